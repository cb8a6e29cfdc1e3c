// Point-to-point bandwidth over TCP loopback: loom's comm::Endpoint
// (header + zero-copy body frames, checked on receipt) against raw ZeroMQ
// doing the same transfer in the same program (DEALER -> ROUTER, the body
// sent zero-copy and received into a frame). One sending thread, one
// receiving thread; each message is one array of the given size. Prints a
// JSON line per (impl, size): bytes per second and seconds per message.
//
//   build/bench/comm_bench [--quick]
#include <zmq.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "microkernel/comm/transport.h"

namespace {

using Clock = std::chrono::steady_clock;
using loom::comm::Endpoint;
using loom::comm::Message;
using loom::comm::MessageKind;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// loom: rank 0 sends `count` messages of `bytes` to rank 1.
double run_loom(std::size_t bytes, int count) {
  Endpoint sender(0), receiver(1);
  sender.connect(1, receiver.bind("tcp://127.0.0.1:*"));
  auto buffer = std::shared_ptr<char[]>(new char[bytes]);
  std::memset(buffer.get(), 1, bytes);
  const auto timeout = std::chrono::milliseconds(30000);
  // warm-up: connection set up, pages touched
  Message warm;
  warm.kind = MessageKind::kData;
  sender.send(1, warm, timeout);
  receiver.recv(timeout);
  const auto start = Clock::now();
  std::thread send_thread([&] {
    for (int i = 0; i < count; ++i) {
      Message m;
      m.kind = MessageKind::kData;
      m.key = "w";
      m.shape = {static_cast<std::int64_t>(bytes / 4)};
      m.dtype = 0;
      m.body = buffer.get();
      m.body_bytes = bytes;
      m.body_owner = std::shared_ptr<const void>(buffer, buffer.get());
      sender.send(1, std::move(m), timeout);
    }
  });
  std::size_t received = 0;
  for (int i = 0; i < count; ++i) received += receiver.recv(timeout).body_bytes;
  const double took = seconds_since(start);
  send_thread.join();
  if (received != bytes * static_cast<std::size_t>(count)) std::abort();
  return took;
}

void no_free(void*, void*) {}

// raw ZeroMQ: the same transfer with no header.
double run_raw(std::size_t bytes, int count) {
  void* context = zmq_ctx_new();
  void* router = zmq_socket(context, ZMQ_ROUTER);
  void* dealer = zmq_socket(context, ZMQ_DEALER);
  const int zero = 0;
  zmq_setsockopt(router, ZMQ_LINGER, &zero, sizeof(zero));
  zmq_setsockopt(dealer, ZMQ_LINGER, &zero, sizeof(zero));
  zmq_bind(router, "tcp://127.0.0.1:*");
  char address[256];
  std::size_t size = sizeof(address);
  zmq_getsockopt(router, ZMQ_LAST_ENDPOINT, address, &size);
  zmq_connect(dealer, address);
  std::vector<char> buffer(bytes, 1);
  auto receive_one = [&] {
    std::size_t got = 0;
    int more = 1;
    while (more) {
      zmq_msg_t frame;
      zmq_msg_init(&frame);
      zmq_msg_recv(&frame, router, 0);
      got += zmq_msg_size(&frame);
      more = zmq_msg_more(&frame);
      zmq_msg_close(&frame);
    }
    return got;
  };
  zmq_send(dealer, "w", 1, 0);  // warm-up
  receive_one();
  const auto start = Clock::now();
  std::thread send_thread([&] {
    for (int i = 0; i < count; ++i) {
      zmq_msg_t body;
      zmq_msg_init_data(&body, buffer.data(), bytes, no_free, nullptr);
      zmq_msg_send(&body, dealer, 0);
    }
  });
  std::size_t received = 0;
  for (int i = 0; i < count; ++i) received += receive_one();
  const double took = seconds_since(start);
  send_thread.join();
  zmq_close(dealer);
  zmq_close(router);
  zmq_ctx_term(context);
  // each message also carried the 2-byte-ish routing id frame
  if (received < bytes * static_cast<std::size_t>(count)) std::abort();
  return took;
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::string(argv[1]) == "--quick";
  struct Size {
    std::size_t bytes;
    int count;
  };
  const std::vector<Size> sizes = {{std::size_t{4} << 20, quick ? 10 : 100}, {std::size_t{64} << 20, quick ? 2 : 12}};
  for (const Size& s : sizes) {
    for (int round = 0; round < 2; ++round) {  // best of two, raw and loom alternating
      const double raw = run_raw(s.bytes, s.count);
      const double loom = run_loom(s.bytes, s.count);
      for (const auto& [impl, took] : {std::pair<const char*, double>{"zeromq raw", raw}, {"loom comm", loom}}) {
        std::printf("{\"impl\": \"%s\", \"bytes\": %zu, \"messages\": %d, \"round\": %d, \"bytes_per_s\": %.6g, "
                    "\"s_per_message\": %.6g}\n",
                    impl, s.bytes, s.count, round, s.bytes * static_cast<double>(s.count) / took, took / s.count);
      }
    }
  }
  return 0;
}
