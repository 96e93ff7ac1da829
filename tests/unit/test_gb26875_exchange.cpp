// The GB/T 26875.3 uplink's sending (daemon/uplink/gb26875/gb26875_exchange.hpp) driven as a centre
// would, with scripted times: a confirm in time, confirms that never come (sent again, then the link
// fails), a stale timer, confirms and denies for other serials, a deny then a second, a reconnection
// with a frame still waiting, serials that wrap, and the heartbeat's interval with the link's state.

#include "uplink/gb26875/gb26875_exchange.hpp"

#include <catch2/catch.hpp>

using namespace std::chrono_literals;
using firegate::gb26875_exchange;
using firegate::gb26875_upload;
using step = gb26875_exchange::step;

namespace {

const gb26875_exchange::settings exchange_settings{10s, 3, 25s, 5s};
const gb26875_exchange::time_point exchange_t0{};

gb26875_upload exchange_item(std::int64_t id) {
  return {id, {0x02, 0x01}, "fire_alarm"};
}

}  // namespace

TEST_CASE("gb26875 exchange: a confirm within its time delivers the frame, measured from its first send") {
  gb26875_exchange x(exchange_settings);
  CHECK(x.link_abnormal());
  CHECK(x.heartbeat_interval() == 5s);
  x.connected();
  const auto serial = x.begin(exchange_item(7), false);
  CHECK(serial == 0);
  CHECK(x.send(exchange_t0) == exchange_t0 + 10s);
  CHECK(x.on_confirm(serial, exchange_t0 + 140ms) == step::confirmed);
  CHECK(x.last_latency() == 140ms);
  CHECK_FALSE(x.link_abnormal());
  CHECK(x.heartbeat_interval() == 25s);
  CHECK(x.finish().id == 7);
  CHECK_FALSE(x.busy());
  // The next frame takes the next serial.
  CHECK(x.begin(exchange_item(8), false) == 1);
}

TEST_CASE(
    "gb26875 exchange: no confirm - sent again `retries` times, each with a new deadline, then the link "
    "fails") {
  gb26875_exchange x(exchange_settings);
  x.connected();
  const auto serial = x.begin(exchange_item(7), false);
  auto deadline = x.send(exchange_t0);
  // The centre stays silent.
  for (unsigned send = 1; send <= 3; ++send) {
    // A timer that went off early (re-armed in between) is not a timeout.
    CHECK(x.on_timeout(deadline - 1ms) == step::not_waited_for);
    CHECK(x.on_timeout(deadline) == step::send_again);
    CHECK(x.link_abnormal());
    CHECK(x.heartbeat_interval() == 5s);
    const auto at = deadline + 2ms;
    deadline = x.send(at);
    CHECK(deadline == at + 10s);
    CHECK(x.current()->sends == send + 1);
    CHECK(x.current()->serial == serial);  // a resend keeps its serial
  }
  CHECK(x.on_timeout(deadline) == step::link_failed);
  // The frame is kept for the next connection.
  REQUIRE(x.busy());
  CHECK(x.current()->item.id == 7);
}

TEST_CASE("gb26875 exchange: a confirm after a resend counts from the first send") {
  gb26875_exchange x(exchange_settings);
  x.connected();
  const auto serial = x.begin(exchange_item(7), false);
  const auto deadline = x.send(exchange_t0);
  CHECK(x.on_timeout(deadline) == step::send_again);
  x.send(deadline);
  CHECK(x.on_confirm(serial, deadline + 300ms) == step::confirmed);
  CHECK(x.last_latency() == 10300ms);
  CHECK_FALSE(x.link_abnormal());
}

TEST_CASE("gb26875 exchange: answers for another serial, or with nothing waiting, change nothing") {
  gb26875_exchange x(exchange_settings);
  CHECK(x.on_confirm(0, exchange_t0) == step::not_waited_for);
  CHECK(x.on_deny(0) == step::not_waited_for);
  CHECK(x.on_timeout(exchange_t0 + 1h) == step::not_waited_for);
  x.connected();
  const auto serial = x.begin(exchange_item(7), false);
  // Not yet sent: nothing can answer it.
  CHECK(x.on_confirm(serial, exchange_t0) == step::not_waited_for);
  x.send(exchange_t0);
  const auto other = static_cast<std::uint16_t>(serial + 1);
  CHECK(x.on_confirm(other, exchange_t0 + 1s) == step::not_waited_for);
  CHECK(x.on_deny(other) == step::not_waited_for);
  CHECK(x.current()->denies == 0);
  CHECK(x.link_abnormal());  // a confirm for another frame says nothing of the link
  CHECK(x.on_confirm(serial, exchange_t0 + 1s) == step::confirmed);
}

TEST_CASE("gb26875 exchange: a deny draws one more send, a second sets the frame aside") {
  gb26875_exchange x(exchange_settings);
  x.connected();
  const auto serial = x.begin(exchange_item(7), false);
  x.send(exchange_t0);
  CHECK(x.on_deny(serial) == step::send_again);
  x.send(exchange_t0 + 50ms);
  CHECK(x.on_deny(serial) == step::set_aside);
  CHECK(x.finish().id == 7);
  // The next frame starts with no deny against it.
  const auto next = x.begin(exchange_item(8), false);
  x.send(exchange_t0 + 60ms);
  CHECK(x.on_deny(next) == step::send_again);
}

TEST_CASE("gb26875 exchange: a frame left unconfirmed waits first on the next connection, under its serial") {
  gb26875_exchange x(exchange_settings);
  x.connected();
  x.begin(exchange_item(1), false);
  x.send(exchange_t0);
  CHECK(x.on_confirm(0, exchange_t0 + 10ms) == step::confirmed);
  x.finish();
  const auto old_serial = x.begin(exchange_item(2), false);
  CHECK(old_serial == 1);
  x.send(exchange_t0 + 1s);
  CHECK(x.on_deny(old_serial) == step::send_again);
  x.send(exchange_t0 + 2s);
  x.lost();  // no confirm came before the connection dropped
  CHECK(x.link_abnormal());
  x.connected();
  REQUIRE(x.busy());
  CHECK(x.current()->item.id == 2);
  CHECK(x.current()->serial == 0);
  CHECK(x.current()->sends == 0);
  CHECK(x.current()->denies == 0);
  // A late confirm of the old connection's serial is not this frame's.
  x.send(exchange_t0 + 5s);
  CHECK(x.on_confirm(old_serial, exchange_t0 + 5100ms) == step::not_waited_for);
  CHECK(x.on_deny(0) == step::send_again);  // its denies were counted afresh
  CHECK(x.on_confirm(0, exchange_t0 + 5200ms) == step::confirmed);
  CHECK(x.last_latency() == 200ms);
}

TEST_CASE("gb26875 exchange: a dropped frame is gone; serials wrap after 65535") {
  gb26875_exchange x(exchange_settings);
  x.connected();
  x.begin({0, {}, "heartbeat"}, true);
  CHECK(x.current()->heartbeat);
  x.drop();
  CHECK_FALSE(x.busy());
  for (int i = 1; i < 65536; ++i) {
    x.begin(exchange_item(i), false);
    x.drop();
  }
  CHECK(x.begin(exchange_item(9), false) == 0);
}
