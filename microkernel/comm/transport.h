// Point-to-point messages between processes, over ZeroMQ.
//
// Each node is an Endpoint with a rank:
// - it binds one ROUTER socket that every peer sends to;
// - it connects one DEALER socket per peer, with identity "r<rank>", to
//   send on.
// A message is [identity,] header, [body] frames (message.h). The body
// goes out without a copy: ZeroMQ reads the array's memory and releases
// it when sent. It comes in without a copy too: the Message keeps the
// received frame alive.
//
// Every call that waits takes a timeout, and nothing waits forever:
// - send() fails when the peer cannot take the message in time
//   (ZMQ_IMMEDIATE: no queueing to a peer that never connected);
// - recv() fails when nothing arrives in time.
// A received message whose header does not check out, or whose frames do
// not match it, is dropped with an error naming the sender. The endpoint
// stays usable afterwards. Sending sockets close with a 1 s linger: a last
// message (a goodbye, an error broadcast) still goes out, and a process
// never waits longer than that at exit over undelivered messages.
//
// Built without ZeroMQ (configure found no libzmq, or a TSan build, whose
// runtime cannot see libzmq's synchronisation), every call throws
// kNotImplemented saying so.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "microkernel/comm/message.h"

namespace loom::comm {

// Whether this build has the ZeroMQ transport.
bool transport_available();

class Endpoint {
 public:
  explicit Endpoint(std::int32_t rank);
  ~Endpoint();
  Endpoint(const Endpoint&) = delete;
  Endpoint& operator=(const Endpoint&) = delete;

  std::int32_t rank() const { return rank_; }

  // Listens on `address` ("tcp://127.0.0.1:*" picks a free port); returns
  // the address peers connect to.
  std::string bind(const std::string& address);
  // Sends to `peer` through `address` from now on.
  void connect(std::int32_t peer, const std::string& address);

  // Sends `m` (its sender set to this rank) to `peer`. Thread-safe.
  void send(std::int32_t peer, Message m, std::chrono::milliseconds timeout);
  // The next message from any peer. One receiving thread at a time.
  Message recv(std::chrono::milliseconds timeout);
  // Like recv(), but nothing arriving in time is not an error: no message.
  std::optional<Message> poll(std::chrono::milliseconds timeout);

 private:
  struct Impl;
  std::int32_t rank_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace loom::comm
