// The comm layer's wire format and ZeroMQ transport: headers round-trip
// and every kind of bad header is refused by name; tensors cross between
// endpoints over TCP loopback; waits end at their timeouts; a garbage
// message is rejected and the endpoint keeps working. The transport tests
// skip in builds without ZeroMQ (and TSan builds, which leave it out).
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <utility>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "microkernel/base/error.h"
#include "microkernel/comm/message.h"
#include "microkernel/comm/transport.h"
#include "tests/cpp/error_text.h"

#if LOOM_WITH_ZMQ_TEST
#include <zmq.h>
#endif

namespace loom::comm {
namespace {

using std::chrono::milliseconds;

Message sample() {
  Message m;
  m.kind = MessageKind::kData;
  m.sender = 3;
  m.request = 0x1122334455667788ull;
  m.dtype = 7;
  m.shape = {2, 0, 5};
  m.key = "layer1.weight";
  m.meta = std::string("\0binary\xff", 8);
  m.body_bytes = 40;
  return m;
}

using loom::testing::error_text;

TEST(CommMessage, HeaderRoundTripsEveryField) {
  const Message m = sample();
  const std::string header = encode_header(m);
  const Message back = decode_header(header.data(), header.size(), "test");
  EXPECT_EQ(back.kind, m.kind);
  EXPECT_EQ(back.sender, m.sender);
  EXPECT_EQ(back.request, m.request);
  EXPECT_EQ(back.dtype, m.dtype);
  EXPECT_EQ(back.shape, m.shape);
  EXPECT_EQ(back.key, m.key);
  EXPECT_EQ(back.meta, m.meta);
  EXPECT_EQ(back.body_bytes, m.body_bytes);
  EXPECT_EQ(back.body, nullptr);
}

TEST(CommMessage, Crc32MatchesTheStandardCheckValue) {
  EXPECT_EQ(crc32("123456789", 9), 0xCBF43926u);  // the CRC-32/ISO-HDLC check value
}

TEST(CommMessage, BadHeadersAreRefusedByName) {
  const std::string good = encode_header(sample());
  auto decode = [](std::string bytes) { return [bytes] { decode_header(bytes.data(), bytes.size(), "peer 'r9'"); }; };

  std::string bad = good;
  bad[0] = 'X';
  EXPECT_NE(error_text(decode(bad)).find("peer 'r9' was rejected: it does not start with \"LOOM\""), std::string::npos);

  bad = good;
  bad[4] = 2;  // version 2
  EXPECT_NE(error_text(decode(bad)).find("wire format version 2, this loom speaks version 1"), std::string::npos);

  bad = good;
  bad[6] = 9;  // kind 9
  EXPECT_NE(error_text(decode(bad)).find("unknown kind 9"), std::string::npos);

  bad = good;
  bad[bad.size() - 10] ^= 0x40;  // a byte of the meta payload
  EXPECT_NE(error_text(decode(bad)).find("checksum does not match"), std::string::npos);

  EXPECT_NE(error_text(decode(good.substr(0, good.size() - 3))).find("truncated or corrupted"), std::string::npos);
  EXPECT_NE(error_text(decode(good.substr(0, 2))).find("inside the field 'magic'"), std::string::npos);
  EXPECT_NE(error_text(decode(good + "xy")).find("2 unexpected bytes after its header"), std::string::npos);

  Message huge = sample();
  huge.shape.assign(kMaxDims + 1, 1);
  EXPECT_NE(error_text([&] { encode_header(huge); }).find("33-d tensor"), std::string::npos);
  bad = good;
  const std::uint32_t ndim = 1000;
  std::memcpy(&bad[24], &ndim, 4);  // after magic, version, kind, sender, request, dtype
  EXPECT_NE(error_text(decode(bad)).find("implausible header (1000 dims"), std::string::npos);
}

class CommTransport : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!transport_available()) GTEST_SKIP() << "built without ZeroMQ";
  }
};

TEST_F(CommTransport, ATensorCrossesWithItsDescriptionIntact) {
  Endpoint a(0), b(1);
  const std::string b_address = b.bind("tcp://127.0.0.1:*");
  a.connect(1, b_address);
  std::vector<float> values(1 << 20);  // 4 MB
  std::iota(values.begin(), values.end(), 0.5f);
  Message m;
  m.kind = MessageKind::kData;
  m.key = "w";
  m.dtype = 0;
  m.shape = {1024, 1024};
  m.set_body_copy(values.data(), values.size() * sizeof(float));
  a.send(1, m, milliseconds(5000));
  const Message got = b.recv(milliseconds(5000));
  EXPECT_EQ(got.sender, 0);
  EXPECT_EQ(got.key, "w");
  EXPECT_EQ(got.shape, (std::vector<std::int64_t>{1024, 1024}));
  ASSERT_EQ(got.body_bytes, values.size() * sizeof(float));
  EXPECT_EQ(std::memcmp(got.body, values.data(), got.body_bytes), 0);

  // A body-less control message, and messages keep their order.
  for (int i = 0; i < 3; ++i) {
    Message c;
    c.kind = MessageKind::kControl;
    c.key = "barrier";
    c.request = static_cast<std::uint64_t>(i);
    a.send(1, c, milliseconds(5000));
  }
  for (int i = 0; i < 3; ++i) {
    const Message c = b.recv(milliseconds(5000));
    EXPECT_EQ(c.kind, MessageKind::kControl);
    EXPECT_EQ(c.request, static_cast<std::uint64_t>(i));
    EXPECT_EQ(c.body_bytes, 0u);
  }
}

TEST_F(CommTransport, TheSentBodyIsHeldUntilZeroMqIsDoneWithIt) {
  Endpoint a(0), b(1);
  a.connect(1, b.bind("tcp://127.0.0.1:*"));
  std::weak_ptr<const void> watch;
  {
    Message m;
    m.kind = MessageKind::kData;
    std::vector<char> bytes(1 << 16, 'x');
    m.set_body_copy(bytes.data(), bytes.size());
    watch = m.body_owner;
    a.send(1, std::move(m), milliseconds(5000));
  }
  const Message got = b.recv(milliseconds(5000));
  EXPECT_EQ(static_cast<const char*>(got.body)[100], 'x');
  for (int i = 0; i < 200 && !watch.expired(); ++i) std::this_thread::sleep_for(milliseconds(5));
  EXPECT_TRUE(watch.expired());  // released once sent, not leaked
}

TEST_F(CommTransport, WaitsEndAtTheirTimeouts) {
  Endpoint a(0), b(1);
  b.bind("tcp://127.0.0.1:*");
  auto start = std::chrono::steady_clock::now();
  EXPECT_NE(error_text([&] { b.recv(milliseconds(150)); }).find("rank 1 received nothing within 150 ms"),
            std::string::npos);
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, milliseconds(140));
  EXPECT_LT(took, milliseconds(2000));

  // Nobody listens there: the send gives up instead of queueing forever.
  const std::string nowhere = Endpoint(6).bind("tcp://127.0.0.1:*");  // bound, then closed at once
  a.connect(6, nowhere);
  start = std::chrono::steady_clock::now();
  EXPECT_NE(error_text([&] { a.send(6, Message{}, milliseconds(150)); }).find("could not send a control message to rank 6"),
            std::string::npos);
  took = std::chrono::steady_clock::now() - start;
  EXPECT_LT(took, milliseconds(2000));
  EXPECT_NE(error_text([&] { a.send(9, Message{}, milliseconds(10)); }).find("has no connection to rank 9"),
            std::string::npos);
}

#if LOOM_WITH_ZMQ_TEST
// A raw ZeroMQ DEALER that sends whatever frames it is given, as a buggy or
// hostile peer would.
class RawPeer {
 public:
  RawPeer(const std::string& identity, const std::string& address) : context_(zmq_ctx_new()) {
    socket_ = zmq_socket(context_, ZMQ_DEALER);
    zmq_setsockopt(socket_, ZMQ_ROUTING_ID, identity.data(), identity.size());
    const int zero = 0;
    zmq_setsockopt(socket_, ZMQ_LINGER, &zero, sizeof(zero));
    EXPECT_EQ(zmq_connect(socket_, address.c_str()), 0);
  }
  ~RawPeer() {
    zmq_close(socket_);
    zmq_ctx_term(context_);
  }
  void send(const std::vector<std::string>& frames) {
    for (std::size_t i = 0; i < frames.size(); ++i) {
      ASSERT_GE(zmq_send(socket_, frames[i].data(), frames[i].size(), i + 1 < frames.size() ? ZMQ_SNDMORE : 0), 0);
    }
  }

 private:
  void* context_;
  void* socket_;
};

TEST_F(CommTransport, BadMessagesAreRejectedByNameAndTheEndpointLivesOn) {
  Endpoint a(0), b(1);
  const std::string address = b.bind("tcp://127.0.0.1:*");
  a.connect(1, address);
  RawPeer raw("r7", address);
  Message body_less;
  body_less.sender = 7;
  body_less.body_bytes = 16;  // announces a body it will not send
  const std::string announces_body = encode_header(body_less);
  Message honest;
  honest.sender = 7;
  const std::string good = encode_header(honest);
  Message claims_other;
  claims_other.sender = 2;  // sent from identity r7
  const std::string impostor = encode_header(claims_other);
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"GET / HTTP/1.1"}, "peer 'r7' was rejected: it does not start with \"LOOM\""},
      {{announces_body}, "announces 16 body bytes, but it came in 1 frames"},
      {{good, "surplus"}, "announces 0 body bytes, but it came in 2 frames"},
      {{impostor}, "peer 'r7' was rejected: it claims to come from rank 2"},
  };
  for (const auto& [frames, expected] : cases) {
    raw.send(frames);
    const std::string error = error_text([&] { b.recv(milliseconds(5000)); });
    EXPECT_NE(error.find(expected), std::string::npos) << error;
    // and the endpoint still works
    a.send(1, Message{}, milliseconds(5000));
    EXPECT_EQ(b.recv(milliseconds(5000)).sender, 0);
  }
  raw.send({good});  // a well-formed raw message is accepted
  EXPECT_EQ(b.recv(milliseconds(5000)).sender, 7);
}
#endif

}  // namespace
}  // namespace loom::comm
