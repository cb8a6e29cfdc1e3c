// See message.h.
#include "microkernel/comm/message.h"

#include <array>
#include <bit>
#include <cstring>

#include "microkernel/base/error.h"

namespace loom::comm {
namespace {

constexpr char kMagic[4] = {'L', 'O', 'O', 'M'};
// magic, version, kind, sender, request, dtype, ndim, body_bytes, key_len, meta_len
constexpr std::size_t kFixedBytes = 4 + 2 + 2 + 4 + 8 + 4 + 4 + 8 + 4 + 4;

template <typename T>
void put(std::string& out, T value) {
  // The wire is little-endian; so is every machine loom builds for (x86-64,
  // aarch64), which a static_assert in encode_header keeps honest.
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));
  out.append(bytes, sizeof(T));
}

// Reads fields in order, each checked against what is left.
class Reader {
 public:
  Reader(const unsigned char* data, std::size_t size, const std::string& from)
      : data_(data), size_(size), from_(from) {}

  template <typename T>
  T get(const char* field) {
    need(sizeof(T), field);
    T value;
    std::memcpy(&value, data_ + at_, sizeof(T));
    at_ += sizeof(T);
    return value;
  }

  std::string bytes(std::size_t n, const char* field) {
    need(n, field);
    std::string out(reinterpret_cast<const char*>(data_ + at_), n);
    at_ += n;
    return out;
  }

  std::size_t at() const { return at_; }

 private:
  void need(std::size_t n, const char* field) const {
    LOOM_CHECK(n <= size_ - at_, "comm: a message from ", from_, " was rejected: its header ends at byte ", size_,
               " inside the field '", field, "' (truncated or corrupted)");
  }

  const unsigned char* data_;
  std::size_t size_;
  std::size_t at_ = 0;
  const std::string& from_;
};

std::array<std::uint32_t, 256> crc_table() {
  std::array<std::uint32_t, 256> table{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    table[i] = c;
  }
  return table;
}

}  // namespace

const char* kind_name(MessageKind kind) {
  switch (kind) {
    case MessageKind::kData: return "data";
    case MessageKind::kControl: return "control";
    case MessageKind::kHeartbeat: return "heartbeat";
    case MessageKind::kError: return "error";
  }
  return "unknown";
}

std::uint32_t crc32(const void* data, std::size_t size) {
  static const std::array<std::uint32_t, 256> table = crc_table();
  const auto* p = static_cast<const unsigned char*>(data);
  std::uint32_t c = 0xFFFFFFFFu;
  for (std::size_t i = 0; i < size; ++i) c = table[(c ^ p[i]) & 0xFFu] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

void Message::set_body_copy(const void* bytes, std::size_t n) {
  auto copy = std::shared_ptr<char[]>(new char[n > 0 ? n : 1]);
  if (n > 0) std::memcpy(copy.get(), bytes, n);
  body = copy.get();
  body_bytes = n;
  body_owner = std::shared_ptr<const void>(copy, copy.get());
}

std::string encode_header(const Message& m) {
  static_assert(std::endian::native == std::endian::little, "loom's wire format is little-endian");
  LOOM_CHECK(m.shape.size() <= kMaxDims, "comm: cannot send a ", m.shape.size(), "-d tensor (at most ", kMaxDims,
             " dims)");
  LOOM_CHECK(m.key.size() <= kMaxKeyBytes, "comm: key of ", m.key.size(), " bytes is too long (at most ",
             kMaxKeyBytes, ")");
  LOOM_CHECK(m.meta.size() <= kMaxMetaBytes, "comm: meta payload of ", m.meta.size(),
             " bytes is too large (at most ", kMaxMetaBytes, "; send large data as the body)");
  std::string out;
  out.reserve(kFixedBytes + m.shape.size() * 8 + m.key.size() + m.meta.size() + 4);
  out.append(kMagic, 4);
  put<std::uint16_t>(out, kWireVersion);
  put<std::uint16_t>(out, static_cast<std::uint16_t>(m.kind));
  put<std::int32_t>(out, m.sender);
  put<std::uint64_t>(out, m.request);
  put<std::int32_t>(out, m.dtype);
  put<std::uint32_t>(out, static_cast<std::uint32_t>(m.shape.size()));
  put<std::uint64_t>(out, static_cast<std::uint64_t>(m.body_bytes));
  put<std::uint32_t>(out, static_cast<std::uint32_t>(m.key.size()));
  put<std::uint32_t>(out, static_cast<std::uint32_t>(m.meta.size()));
  for (std::int64_t d : m.shape) put<std::int64_t>(out, d);
  out += m.key;
  out += m.meta;
  put<std::uint32_t>(out, crc32(out.data(), out.size()));
  return out;
}

Message decode_header(const void* data, std::size_t size, const std::string& from) {
  const auto* bytes = static_cast<const unsigned char*>(data);
  Reader r(bytes, size, from);
  const std::string magic = r.bytes(4, "magic");
  LOOM_CHECK(magic == std::string(kMagic, 4), "comm: a message from ", from,
             " was rejected: it does not start with \"LOOM\" (not a loom message, or another protocol on this port)");
  const auto version = r.get<std::uint16_t>("version");
  LOOM_CHECK(version == kWireVersion, "comm: a message from ", from, " was rejected: wire format version ", version,
             ", this loom speaks version ", kWireVersion, " (run the same loom version on every node)");
  Message m;
  const auto kind = r.get<std::uint16_t>("kind");
  LOOM_CHECK(kind >= 1 && kind <= 4, "comm: a message from ", from, " was rejected: unknown kind ", kind);
  m.kind = static_cast<MessageKind>(kind);
  m.sender = r.get<std::int32_t>("sender");
  m.request = r.get<std::uint64_t>("request");
  m.dtype = r.get<std::int32_t>("dtype");
  const auto ndim = r.get<std::uint32_t>("ndim");
  const auto body_bytes = r.get<std::uint64_t>("body_bytes");
  const auto key_len = r.get<std::uint32_t>("key_len");
  const auto meta_len = r.get<std::uint32_t>("meta_len");
  LOOM_CHECK(ndim <= kMaxDims && key_len <= kMaxKeyBytes && meta_len <= kMaxMetaBytes, "comm: a message from ",
             from, " was rejected: implausible header (", ndim, " dims, key of ", key_len, " bytes, meta of ",
             meta_len, " bytes)");
  m.shape.resize(ndim);
  for (auto& d : m.shape) {
    d = r.get<std::int64_t>("shape");
    LOOM_CHECK(d >= 0, "comm: a message from ", from, " was rejected: negative dimension ", d, " in its shape");
  }
  m.key = r.bytes(key_len, "key");
  m.meta = r.bytes(meta_len, "meta");
  const std::size_t covered = r.at();
  const auto crc = r.get<std::uint32_t>("crc32");
  LOOM_CHECK(crc == crc32(bytes, covered), "comm: a message from ", from,
             " was rejected: its header checksum does not match (corrupted in transit)");
  LOOM_CHECK(r.at() == size, "comm: a message from ", from, " was rejected: ", size - r.at(),
             " unexpected bytes after its header");
  m.body_bytes = static_cast<std::size_t>(body_bytes);
  return m;
}

}  // namespace loom::comm
