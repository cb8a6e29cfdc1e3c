#include "runtime/python/bind_profiler.h"

#include <nanobind/stl/string.h>

#include "microkernel/engine/profiler.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace loom::python {

void bind_profiler(nb::module_& m) {
  nb::module_ p = m.def_submodule("profiler", "The engine's per-op profiler.");
  namespace prof = loom::engine::profiler;
  p.def("start", &prof::start, "Records every op the engine runs from now on.");
  p.def("stop", &prof::stop, "Stops recording; the records are kept.");
  p.def("running", &prof::running);
  p.def("clear", &prof::clear, "Drops the records.");
  p.def("dump", &prof::dump, "path"_a, nb::call_guard<nb::gil_scoped_release>(),
        "Writes the records as Chrome-trace JSON (open in ui.perfetto.dev), one track per worker.");
  p.def("summary", &prof::summary, nb::call_guard<nb::gil_scoped_release>(),
        "The per-op table: calls, total, mean and max time.");
  p.def("record_count", &prof::record_count);
}

}  // namespace loom::python
