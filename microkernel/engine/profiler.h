// The engine profiler: one record per executed op, written as a Chrome trace.
//
// start() / stop() bracket what is recorded; dump(path) writes Chrome-trace
// JSON (open it in https://ui.perfetto.dev or chrome://tracing) with one
// track per worker, and summary() returns the aggregate table (op, calls,
// total, mean, max). All calls are thread-safe. Off, the cost per op is one
// relaxed atomic load.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "microkernel/storage/device.h"

namespace loom::engine::profiler {

void start();
void stop();
bool running();
void clear();
// Writes the records so far; throws loom::Error if the file cannot be written.
void dump(const std::string& path);
std::string summary();
// Records kept so far (for tests).
std::size_t record_count();

namespace detail {
extern std::atomic<bool> g_enabled;
std::int64_t now_ns();
// `track` names the worker ("cpu worker 1", "gpu(0) copy"); must outlive
// the profile (workers keep theirs for the life of the process).
void record(const char* name, Device device, const char* track, std::int64_t start_ns,
            std::int64_t end_ns);
}  // namespace detail

inline bool enabled() { return detail::g_enabled.load(std::memory_order_relaxed); }

}  // namespace loom::engine::profiler
