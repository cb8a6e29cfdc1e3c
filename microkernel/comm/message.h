// The wire format of loom's process-to-process messages.
//
// A message is one header and, optionally, one body of raw bytes (a
// tensor's contents). Each travels in its own ZeroMQ frame, so a tensor is
// never copied into a buffer together with its description. On receipt it
// stays in the frame ZeroMQ filled (see transport.h).
//
// The header is little-endian, fixed fields first:
//   magic "LOOM" | version u16 | kind u16 | sender i32 | request u64 |
//   dtype i32 | ndim u32 | body_bytes u64 | key_len u32 | meta_len u32 |
//   shape i64[ndim] | key bytes | meta bytes | crc32 u32 of all before it
// decode_header() checks every part and throws a loom::Error that says
// what is wrong. A message of a newer version is refused by name, and so is
// a truncated or corrupted one, or one that is not loom's. Nothing in a
// header is trusted before it has been checked.
//
// The comm layer knows no operator and no dtype: `dtype` is an opaque code
// the runtime assigns (-1: no tensor).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace loom::comm {

inline constexpr std::uint16_t kWireVersion = 1;
// Sanity bounds that decode enforces: larger values mean a corrupted or hostile header.
inline constexpr std::uint32_t kMaxDims = 32;
inline constexpr std::uint32_t kMaxKeyBytes = 4096;
inline constexpr std::uint32_t kMaxMetaBytes = 1u << 20;

enum class MessageKind : std::uint16_t {
  kData = 1,       // a tensor for a key (push, pull reply)
  kControl = 2,    // a command and its small payload in `meta` (register, barrier, ...)
  kHeartbeat = 3,  // "I am alive"
  kError = 4,      // the peer failed; `meta` says why
};
const char* kind_name(MessageKind kind);

struct Message {
  MessageKind kind = MessageKind::kControl;
  std::int32_t sender = -1;        // the sender's rank
  std::uint64_t request = 0;       // pairs a reply with its request
  std::int32_t dtype = -1;         // the runtime's dtype code, -1 without a tensor
  std::vector<std::int64_t> shape;
  std::string key;                 // a KVStore key or a command name
  std::string meta;                // a small payload (a command's arguments)
  // The body: `body_bytes` bytes at `body`, kept alive by `body_owner`
  // (an array's storage when sending, the received ZeroMQ frame after).
  const void* body = nullptr;
  std::size_t body_bytes = 0;
  std::shared_ptr<const void> body_owner;

  // A message whose body is a copy of `bytes` (tests, small payloads).
  void set_body_copy(const void* bytes, std::size_t n);
};

// The header's bytes for `m` (not its body).
std::string encode_header(const Message& m);
// The message a header describes (its body still to attach); throws a
// loom::Error naming `from` (who sent it) and what is wrong.
Message decode_header(const void* data, std::size_t size, const std::string& from);

std::uint32_t crc32(const void* data, std::size_t size);

}  // namespace loom::comm
