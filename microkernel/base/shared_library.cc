#include "microkernel/base/shared_library.h"

#include <dlfcn.h>

namespace loom {

void* open_shared_library(const char* soname, const char* configured_path, const char* what, std::string* error) {
  if (void* loaded = dlopen(soname, RTLD_NOW | RTLD_NOLOAD)) return loaded;
  dlerror();  // the probe's "not loaded" is no error worth reporting
  std::string reasons;
  for (const char* candidate : {configured_path, soname}) {
    if (candidate == nullptr || *candidate == '\0') continue;
    if (void* opened = dlopen(candidate, RTLD_NOW)) return opened;
    const char* why = dlerror();
    reasons += std::string(reasons.empty() ? "" : "; ") + (why ? why : candidate);
  }
  *error = std::string("cannot load ") + what + " (tried " +
           (configured_path && *configured_path ? std::string(configured_path) + " and " : std::string()) + soname +
           "): " + reasons;
  return nullptr;
}

void* find_symbol(void* library, const char* name, const char* what, std::string* error) {
  void* symbol = library ? dlsym(library, name) : nullptr;
  if (symbol == nullptr && error->empty()) *error = std::string("the loaded ") + what + " has no " + name;
  return symbol;
}

}  // namespace loom
