#include "microkernel/engine/profiler.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iomanip>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <vector>

#include "microkernel/base/error.h"

namespace loom::engine::profiler {
namespace {

struct Record {
  const char* name;
  Device device;
  const char* track;
  std::int64_t start_ns;
  std::int64_t end_ns;
};

// Each thread appends to its own buffer (its lock is uncontended except
// while dump() reads), so recording never serializes the workers.
struct Buffer {
  std::mutex lock;
  std::vector<Record> records;
};

struct Registry {
  std::mutex lock;
  std::vector<std::shared_ptr<Buffer>> buffers;  // outlive their threads
};

Registry& registry() {
  static Registry* instance = new Registry();  // leaked: used until exit
  return *instance;
}

Buffer& this_thread_buffer() {
  thread_local std::shared_ptr<Buffer> buffer = [] {
    auto created = std::make_shared<Buffer>();
    std::lock_guard<std::mutex> hold(registry().lock);
    registry().buffers.push_back(created);
    return created;
  }();
  return *buffer;
}

std::vector<Record> snapshot() {
  std::vector<Record> all;
  std::lock_guard<std::mutex> hold(registry().lock);
  for (auto& buffer : registry().buffers) {
    std::lock_guard<std::mutex> hold_buffer(buffer->lock);
    all.insert(all.end(), buffer->records.begin(), buffer->records.end());
  }
  std::sort(all.begin(), all.end(),
            [](const Record& a, const Record& b) { return a.start_ns < b.start_ns; });
  return all;
}

std::string json_string(const char* text) {
  std::string out = "\"";
  for (const char* c = text; *c; ++c) {
    switch (*c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      default:
        if (static_cast<unsigned char>(*c) < 0x20) {
          char escaped[8];
          std::snprintf(escaped, sizeof escaped, "\\u%04x", *c);
          out += escaped;
        } else {
          out += *c;
        }
    }
  }
  return out + "\"";
}

}  // namespace

namespace detail {

std::atomic<bool> g_enabled{false};

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void record(const char* name, Device device, const char* track, std::int64_t start_ns,
            std::int64_t end_ns) {
  Buffer& buffer = this_thread_buffer();
  std::lock_guard<std::mutex> hold(buffer.lock);
  buffer.records.push_back({name, device, track, start_ns, end_ns});
}

}  // namespace detail

void start() { detail::g_enabled.store(true); }
void stop() { detail::g_enabled.store(false); }
bool running() { return detail::g_enabled.load(); }

void clear() {
  std::lock_guard<std::mutex> hold(registry().lock);
  for (auto& buffer : registry().buffers) {
    std::lock_guard<std::mutex> hold_buffer(buffer->lock);
    buffer->records.clear();
  }
}

std::size_t record_count() { return snapshot().size(); }

void dump(const std::string& path) {
  std::vector<Record> records = snapshot();
  // One trace "process" per device and one "thread" per worker track, so
  // Perfetto shows a row per worker grouped by device.
  std::map<std::string, int> device_ids, track_ids;
  auto id_of = [](std::map<std::string, int>& ids, const std::string& key) {
    return ids.emplace(key, static_cast<int>(ids.size()) + 1).first->second;
  };
  std::int64_t origin = records.empty() ? 0 : records.front().start_ns;
  std::ostringstream out;
  out << std::fixed << std::setprecision(3) << "{\"displayTimeUnit\":\"ns\",\"traceEvents\":[";
  bool first = true;
  std::map<std::pair<int, int>, std::string> track_names;
  for (const Record& r : records) {
    int pid = id_of(device_ids, r.device.str());
    int tid = id_of(track_ids, r.track);
    track_names[{pid, tid}] = r.track;
    out << (first ? "" : ",") << "\n{\"name\":" << json_string(r.name)
        << ",\"cat\":\"op\",\"ph\":\"X\",\"ts\":" << (r.start_ns - origin) / 1e3
        << ",\"dur\":" << (r.end_ns - r.start_ns) / 1e3 << ",\"pid\":" << pid << ",\"tid\":" << tid
        << "}";
    first = false;
  }
  for (const auto& [device, pid] : device_ids) {
    out << (first ? "" : ",") << "\n{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":" << pid
        << ",\"args\":{\"name\":" << json_string(device.c_str()) << "}}";
    first = false;
  }
  for (const auto& [key, name] : track_names) {
    out << ",\n{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":" << key.first
        << ",\"tid\":" << key.second << ",\"args\":{\"name\":" << json_string(name.c_str()) << "}}";
  }
  out << "\n]}\n";
  std::ofstream file(path);
  file << out.str();
  file.close();
  LOOM_CHECK_KIND(file.good(), ErrorKind::kRuntime, "profiler: cannot write the trace to '", path,
                  "'");
}

std::string summary() {
  struct Totals {
    std::int64_t calls = 0, total_ns = 0, max_ns = 0;
  };
  std::map<std::string, Totals> by_name;
  for (const Record& r : snapshot()) {
    Totals& t = by_name[r.name];
    std::int64_t ns = r.end_ns - r.start_ns;
    ++t.calls;
    t.total_ns += ns;
    t.max_ns = std::max(t.max_ns, ns);
  }
  std::vector<std::pair<std::string, Totals>> rows(by_name.begin(), by_name.end());
  std::sort(rows.begin(), rows.end(),
            [](const auto& a, const auto& b) { return a.second.total_ns > b.second.total_ns; });
  std::ostringstream out;
  out << std::left << std::setw(32) << "op" << std::right << std::setw(10) << "calls"
      << std::setw(14) << "total (ms)" << std::setw(14) << "mean (us)" << std::setw(14)
      << "max (us)" << "\n";
  out << std::fixed;
  for (const auto& [name, t] : rows) {
    out << std::left << std::setw(32) << name << std::right << std::setw(10) << t.calls
        << std::setw(14) << std::setprecision(3) << t.total_ns / 1e6 << std::setw(14)
        << std::setprecision(2) << t.total_ns / 1e3 / static_cast<double>(t.calls)
        << std::setw(14) << t.max_ns / 1e3 << "\n";
  }
  return out.str();
}

}  // namespace loom::engine::profiler
