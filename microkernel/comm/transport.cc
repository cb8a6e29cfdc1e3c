// See transport.h.
#include "microkernel/comm/transport.h"

#include <cerrno>
#include <cstring>
#include <vector>

#include "microkernel/base/error.h"

#if LOOM_WITH_ZMQ
#include <zmq.h>
#endif

namespace loom::comm {

#if LOOM_WITH_ZMQ

namespace {

[[noreturn]] void fail(const std::string& what) {
  LOOM_THROW(ErrorKind::kRuntime, "comm: ", what, ": ", zmq_strerror(zmq_errno()));
}

void set_int(void* socket, int option, int value, const char* name) {
  if (zmq_setsockopt(socket, option, &value, sizeof(value)) != 0) fail(std::string("setting ") + name);
}

std::string rank_name(std::int32_t rank) { return "r" + std::to_string(rank); }

// A received frame, closed when the last Message body referring to it goes.
struct Frame {
  zmq_msg_t msg;
  Frame() { zmq_msg_init(&msg); }
  ~Frame() { zmq_msg_close(&msg); }
  Frame(const Frame&) = delete;
  Frame& operator=(const Frame&) = delete;
  const void* data() { return zmq_msg_data(&msg); }
  std::size_t size() { return zmq_msg_size(&msg); }
};

// ZeroMQ calls this when it no longer needs a sent body: drop our hold on it.
void release_body(void* /*data*/, void* hint) { delete static_cast<std::shared_ptr<const void>*>(hint); }

}  // namespace

struct Endpoint::Impl {
  void* context = nullptr;
  void* router = nullptr;
  std::string bound;
  std::mutex send_mutex;  // a ZeroMQ socket is used by one thread at a time
  std::map<std::int32_t, void*> dealers;
  std::map<std::int32_t, std::string> addresses;
};

bool transport_available() { return true; }

Endpoint::Endpoint(std::int32_t rank) : rank_(rank), impl_(std::make_unique<Impl>()) {
  LOOM_CHECK(rank >= 0, "comm: a rank is >= 0, got ", rank);
  impl_->context = zmq_ctx_new();
  if (impl_->context == nullptr) fail("creating a ZeroMQ context");
}

Endpoint::~Endpoint() {
  for (auto& [peer, socket] : impl_->dealers) zmq_close(socket);
  if (impl_->router != nullptr) zmq_close(impl_->router);
  zmq_ctx_term(impl_->context);  // prompt: every socket has linger 0
}

std::string Endpoint::bind(const std::string& address) {
  LOOM_CHECK(impl_->router == nullptr, "comm: rank ", rank_, " is already bound to ", impl_->bound);
  impl_->router = zmq_socket(impl_->context, ZMQ_ROUTER);
  if (impl_->router == nullptr) fail("creating a ROUTER socket");
  set_int(impl_->router, ZMQ_LINGER, 0, "ZMQ_LINGER");
  if (zmq_bind(impl_->router, address.c_str()) != 0) fail("rank " + std::to_string(rank_) + " binding " + address);
  char endpoint[256];
  std::size_t size = sizeof(endpoint);
  if (zmq_getsockopt(impl_->router, ZMQ_LAST_ENDPOINT, endpoint, &size) != 0) fail("reading the bound address");
  impl_->bound = endpoint;
  return impl_->bound;
}

void Endpoint::connect(std::int32_t peer, const std::string& address) {
  std::lock_guard<std::mutex> hold(impl_->send_mutex);
  LOOM_CHECK(impl_->dealers.count(peer) == 0, "comm: rank ", rank_, " is already connected to rank ", peer, " at ",
             impl_->addresses[peer]);
  void* dealer = zmq_socket(impl_->context, ZMQ_DEALER);
  if (dealer == nullptr) fail("creating a DEALER socket");
  const std::string id = rank_name(rank_);
  if (zmq_setsockopt(dealer, ZMQ_ROUTING_ID, id.data(), id.size()) != 0) fail("setting ZMQ_ROUTING_ID");
  // A short linger: a goodbye or an error broadcast sent just before the
  // socket closes still goes out, and closing never waits more than this.
  set_int(dealer, ZMQ_LINGER, 1000, "ZMQ_LINGER");
  set_int(dealer, ZMQ_IMMEDIATE, 1, "ZMQ_IMMEDIATE");  // no queueing for a peer that is not there
  if (zmq_connect(dealer, address.c_str()) != 0) {
    zmq_close(dealer);
    fail("rank " + std::to_string(rank_) + " connecting to rank " + std::to_string(peer) + " at " + address);
  }
  impl_->dealers[peer] = dealer;
  impl_->addresses[peer] = address;
}

void Endpoint::send(std::int32_t peer, Message m, std::chrono::milliseconds timeout) {
  m.sender = rank_;
  const std::string header = encode_header(m);
  const bool with_body = m.body_bytes > 0;
  LOOM_CHECK(!with_body || m.body != nullptr, "comm: a message with ", m.body_bytes, " body bytes has no body");
  // The body frame is ready before the header goes: once a header is out
  // with SNDMORE, a failure would glue the next message onto this one.
  zmq_msg_t body;
  if (with_body && m.body_owner) {  // zero copy: ZeroMQ reads the caller's memory, which we keep alive until it is done
    auto* hold_body = new std::shared_ptr<const void>(m.body_owner);
    if (zmq_msg_init_data(&body, const_cast<void*>(m.body), m.body_bytes, release_body, hold_body) != 0) {
      delete hold_body;
      fail("wrapping a message body");
    }
  } else if (with_body) {
    if (zmq_msg_init_size(&body, m.body_bytes) != 0) fail("allocating a message body");
    std::memcpy(zmq_msg_data(&body), m.body, m.body_bytes);
  }
  struct CloseUnsent {  // a body frame that never went out is released here
    zmq_msg_t* msg;
    bool armed;
    ~CloseUnsent() {
      if (armed) zmq_msg_close(msg);
    }
  } close_unsent{&body, with_body};
  std::lock_guard<std::mutex> hold(impl_->send_mutex);
  auto it = impl_->dealers.find(peer);
  LOOM_CHECK(it != impl_->dealers.end(), "comm: rank ", rank_, " has no connection to rank ", peer,
             " (connect() it first)");
  void* dealer = it->second;
  set_int(dealer, ZMQ_SNDTIMEO, static_cast<int>(timeout.count()), "ZMQ_SNDTIMEO");
  if (zmq_send(dealer, header.data(), header.size(), with_body ? ZMQ_SNDMORE : 0) < 0) {
    if (zmq_errno() == EAGAIN) {
      LOOM_THROW(ErrorKind::kRuntime, "comm: rank ", rank_, " could not send a ", kind_name(m.kind),
                 " message to rank ", peer, " at ", impl_->addresses[peer], " within ", timeout.count(),
                 " ms: the peer is not reachable or not receiving");
    }
    fail("sending to rank " + std::to_string(peer));
  }
  if (!with_body) return;
  // The header went out with SNDMORE, so this frame joins it without
  // waiting: ZeroMQ delivers a multipart message whole or not at all.
  if (zmq_msg_send(&body, dealer, 0) < 0) fail("sending a message body to rank " + std::to_string(peer));
  close_unsent.armed = false;  // ZeroMQ owns it now
}

Message Endpoint::recv(std::chrono::milliseconds timeout) {
  std::optional<Message> m = poll(timeout);
  if (!m) LOOM_THROW(ErrorKind::kRuntime, "comm: rank ", rank_, " received nothing within ", timeout.count(), " ms");
  return std::move(*m);
}

std::optional<Message> Endpoint::poll(std::chrono::milliseconds timeout) {
  LOOM_CHECK(impl_->router != nullptr, "comm: rank ", rank_, " must bind() before it can receive");
  zmq_pollitem_t item{impl_->router, 0, ZMQ_POLLIN, 0};
  const int ready = zmq_poll(&item, 1, static_cast<long>(timeout.count()));
  if (ready < 0) {
    if (zmq_errno() == EINTR) return std::nullopt;  // a signal: the caller polls again
    fail("waiting for a message");
  }
  if (ready == 0) return std::nullopt;
  // A multipart message arrives whole: read every frame of it now.
  std::vector<std::shared_ptr<Frame>> frames;
  int more = 1;
  while (more) {
    auto frame = std::make_shared<Frame>();
    if (zmq_msg_recv(&frame->msg, impl_->router, ZMQ_DONTWAIT) < 0) fail("receiving a message frame");
    more = zmq_msg_more(&frame->msg);
    frames.push_back(std::move(frame));
  }
  const std::string from = frames[0]->size() > 0
                               ? "peer '" + std::string(static_cast<const char*>(frames[0]->data()), frames[0]->size()) + "'"
                               : std::string("an unnamed peer");
  LOOM_CHECK(frames.size() >= 2, "comm: a message from ", from, " was rejected: it has no header frame");
  Message m = decode_header(frames[1]->data(), frames[1]->size(), from);
  const std::size_t expected = m.body_bytes > 0 ? 3 : 2;
  LOOM_CHECK(frames.size() == expected, "comm: a message from ", from, " was rejected: its header announces ",
             m.body_bytes, " body bytes, but it came in ", frames.size() - 1, " frames");
  const std::string claimed = rank_name(m.sender);
  LOOM_CHECK(from == "peer '" + claimed + "'", "comm: a message from ", from,
             " was rejected: it claims to come from rank ", m.sender);
  if (expected == 3) {
    LOOM_CHECK(frames[2]->size() == m.body_bytes, "comm: a message from ", from, " was rejected: its header announces ",
               m.body_bytes, " body bytes, its body has ", frames[2]->size());
    m.body = frames[2]->data();
    m.body_owner = std::shared_ptr<const void>(frames[2], frames[2]->data());
  }
  return m;
}

#else  // built without ZeroMQ

bool transport_available() { return false; }

struct Endpoint::Impl {};

namespace {
[[noreturn]] void unavailable() {
  LOOM_THROW(ErrorKind::kNotImplemented,
             "comm: this loom was built without ZeroMQ (apt-get install libzmq3-dev, then re-run configure.py; "
             "TSan builds leave it out)");
}
}  // namespace

Endpoint::Endpoint(std::int32_t rank) : rank_(rank) { unavailable(); }
Endpoint::~Endpoint() = default;
std::string Endpoint::bind(const std::string&) { unavailable(); }
void Endpoint::connect(std::int32_t, const std::string&) { unavailable(); }
void Endpoint::send(std::int32_t, Message, std::chrono::milliseconds) { unavailable(); }
Message Endpoint::recv(std::chrono::milliseconds) { unavailable(); }
std::optional<Message> Endpoint::poll(std::chrono::milliseconds) { unavailable(); }

#endif

}  // namespace loom::comm
