// The outbox reader every uplink uses (daemon/uplink/outbox_reader.hpp), against a real SQLite file
// through the real store worker, with a scripted uplink in place of a link: lane order across what
// is read and what is offered, an item put back keeping its place, delivery marked for one uplink
// only, stored telemetry an uplink does not send, a recovery held behind its alarm after a restart,
// and marks not lost when the reader goes.

#include "domain/event_record.hpp"
#include "store/store.hpp"
#include "store/store_worker.hpp"
#include "support.hpp"
#include "uplink/mqtt/payloads.hpp"
#include "uplink/outbox_reader.hpp"

#include <catch2/catch.hpp>

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <functional>
#include <future>
#include <string>
#include <vector>

using namespace firegate;
using namespace std::chrono_literals;

namespace {

event event_of(const std::string& id, event_kind kind) {
  event e;
  e.id = id;
  e.kind = kind;
  e.device = "smoke-1";
  e.time = clock::now();
  return e;
}

/// Records an event and its outbox item as the application does; returns the item.
outbox_item record(store_worker& worker, const std::string& id, event_kind kind, lane l) {
  return worker.call([&](store& s) {
    auto e = event_of(id, kind);
    e.seq = s.next_event_seq();
    return outbox_item{s.record_event(e, l, "t/" + id, id), l, "t/" + id, id, {}, {}};
  });
}

/// Runs the loop until `done` holds; fails after five seconds (a bound, not a wait to prove absence).
void run_until(boost::asio::io_context& io, const std::function<bool()>& done) {
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!done()) {
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    io.restart();
    io.run_one_for(20ms);
  }
}

/// The payloads (the event ids here) of what the reader would send next, in order, put back after.
std::vector<std::string> sending_order(outbox_reader& reader) {
  std::vector<std::string> out;
  std::vector<std::int64_t> taken;
  while (reader.front()) {
    const auto& item = reader.take();
    out.push_back(item.payload);
    taken.push_back(item.id);
  }
  for (const auto id : taken) reader.put_back(id);
  return out;
}

std::vector<std::string> undelivered(store_worker& worker, unsigned uplink) {
  return worker.call([uplink](store& s) {
    std::vector<std::string> out;
    for (const auto& i : s.pending(uplink, 100, {})) out.push_back(i.payload);
    return out;
  });
}

/// Waits for every job posted to the worker so far (call() would go ahead of them: it is urgent).
void drain(store_worker& worker) {
  std::promise<void> done;
  worker.post([&done](store&) { done.set_value(); });
  done.get_future().wait();
}

/// A real store through its worker, and a loop for the reader's replies.
struct store_site {
  test::temp_dir dir;
  boost::asio::io_context io;
  store_worker worker{std::make_unique<store>((dir / "fg.db").string())};

  /// Two uplinks, and `rows` telemetry items stored for both ("tele-0", "tele-1", ...).
  void two_uplinks_with_telemetry(int rows) {
    worker.call([rows](store& s) {
      s.set_uplinks(2);
      for (int i = 0; i < rows; ++i) s.enqueue(lane::telemetry, "t/tele", "tele-" + std::to_string(i));
      return 0;
    });
  }
};

}  // namespace

TEST_CASE_METHOD(
    store_site,
    "outbox reader: lane order across what is read and what is offered - an item put back keeps its place - "
    "delivery marked for its own uplink only") {
  two_uplinks_with_telemetry(1);
  record(worker, "fault-1", event_kind::device_offline, lane::fault);
  record(worker, "alarm-1", event_kind::fire_alarm, lane::alarm);

  std::size_t ready = 0;
  const auto held =
      outbox_reader::make(io.get_executor(), worker, {0, 8, true, {}, "test uplink"}, [&] { ++ready; });
  auto& reader = *held;
  reader.notify();
  run_until(io, [&] { return reader.queued() == 3; });
  CHECK(ready >= 1);

  // A fire committed now goes before the fault read earlier, behind the fire read before it.
  CHECK(reader.offer(record(worker, "alarm-2", event_kind::fire_alarm, lane::alarm)));
  CHECK(sending_order(reader) == std::vector<std::string>{"alarm-1", "alarm-2", "fault-1", "tele-0"});

  // Taken and not delivered (a lost connection): back in its place, ahead of what came later.
  const auto first = reader.take().id;
  const auto second = reader.take().id;
  CHECK(reader.in_flight() == 2);
  reader.put_back(first);
  CHECK(reader.front()->payload == "alarm-1");
  CHECK_FALSE(reader.offer(*reader.in_flight_item(second)));  // held already: not queued twice
  reader.put_back_all();
  CHECK(sending_order(reader) == std::vector<std::string>{"alarm-1", "alarm-2", "fault-1", "tele-0"});

  // Delivered: marked for this uplink only; the other still has it to send.
  reader.take();
  reader.done(first);
  reader.done(987654);  // unknown: ignored
  run_until(io, [&] { return undelivered(worker, 0).size() == 3; });
  CHECK(undelivered(worker, 0) == std::vector<std::string>{"alarm-2", "fault-1", "tele-0"});
  CHECK(undelivered(worker, 1) == std::vector<std::string>{"alarm-1", "alarm-2", "fault-1", "tele-0"});

  // One the store could not take (a negative id) is held in memory only, and forgotten once done.
  CHECK(reader.offer(outbox_item{-1, lane::alarm, "t/memory", "memory-1", {}, {}}));
  CHECK(reader.front()->payload == "alarm-2");
  reader.take();
  CHECK(reader.take().payload == "memory-1");
  reader.done(-1);
  CHECK(reader.in_flight_item(-1) == nullptr);
  CHECK(
      reader.offer(outbox_item{-1, lane::alarm, "t/memory", "memory-1", {}, {}}));  // a new one, not a repeat
}

TEST_CASE_METHOD(
    store_site,
    "outbox reader: an uplink that sends no stored telemetry marks it delivered for itself as it reads it") {
  two_uplinks_with_telemetry(1);
  record(worker, "fault-1", event_kind::device_offline, lane::fault);
  const auto held = outbox_reader::make(io.get_executor(), worker, {1, 8, false, {}, "test uplink"}, [] {});
  auto& reader = *held;
  reader.notify();
  run_until(io, [&] { return undelivered(worker, 1) == std::vector<std::string>{"fault-1"}; });
  CHECK(sending_order(reader) == std::vector<std::string>{"fault-1"});
  CHECK(undelivered(worker, 0) == std::vector<std::string>{"fault-1", "tele-0"});
}

TEST_CASE_METHOD(store_site,
                 "outbox reader: reads on while the store has more, though a read queued nothing to send") {
  two_uplinks_with_telemetry(10);  // what the MQTT uplink stored before GB/T 26875.3 was added
  // Four at a time, each read all telemetry this uplink marks at once: nothing is queued, and no
  // other notice comes. Every row is marked all the same.
  const auto held = outbox_reader::make(io.get_executor(), worker, {1, 4, false, {}, "test uplink"}, [] {});
  auto& reader = *held;
  reader.notify();
  run_until(io, [&] { return undelivered(worker, 1).empty(); });
  CHECK(reader.queued() == 0);
  CHECK(undelivered(worker, 0).size() == 10);
}

TEST_CASE_METHOD(
    store_site,
    "outbox reader: after a restart a recovery committed before the first read goes behind its alarm") {
  record(worker, "alarm-1", event_kind::fire_alarm, lane::alarm);  // left undelivered by the last run
  const auto held = outbox_reader::make(io.get_executor(), worker, {0, 8, true, {}, "test uplink"}, [] {});
  auto& reader = *held;
  // The fire ends as the gateway starts: committed and offered before the backlog is read.
  CHECK(reader.offer(record(worker, "recovery-1", event_kind::fire_recovery, lane::alarm), true));
  CHECK(reader.front() == nullptr);
  CHECK(reader.held() == 1);
  // A fire committed now does not wait for the read.
  CHECK(reader.offer(record(worker, "alarm-2", event_kind::fire_alarm, lane::alarm)));
  CHECK(reader.front()->payload == "alarm-2");
  reader.notify();
  run_until(io, [&] { return reader.held() == 0; });
  CHECK(sending_order(reader) == std::vector<std::string>{"alarm-2", "alarm-1", "recovery-1"});
}

TEST_CASE_METHOD(
    store_site, "outbox reader: deliveries not yet marked when the reader stops are marked, not sent again") {
  for (const char* id : {"alarm-1", "alarm-2", "alarm-3"})
    record(worker, id, event_kind::fire_alarm, lane::alarm);
  {
    const auto held = outbox_reader::make(io.get_executor(), worker, {0, 8, true, {}, "test uplink"}, [] {});
    auto& reader = *held;
    reader.notify();
    run_until(io, [&] { return reader.queued() == 3; });
    const auto a = reader.take().id;
    const auto b = reader.take().id;
    reader.done(a);  // its mark goes to the store's thread at once
    reader.done(b);  // waits for that mark to commit: the reader stops first
    reader.stop();
  }
  drain(worker);
  CHECK(undelivered(worker, 0) == std::vector<std::string>{"alarm-3"});
}

TEST_CASE_METHOD(
    store_site,
    "outbox reader: a read under way holds the reader past its owner - stopped, its answer reaches "
    "nothing and queues nothing") {
  record(worker, "alarm-1", event_kind::fire_alarm, lane::alarm);
  std::size_t ready = 0;
  auto held =
      outbox_reader::make(io.get_executor(), worker, {0, 8, true, {}, "test uplink"}, [&ready] { ++ready; });
  std::weak_ptr<outbox_reader> watch = held;
  held->notify();  // a read goes to the store's thread
  held->stop();    // the owner stops it and goes
  held.reset();
  CHECK_FALSE(watch.expired());  // the read's job holds it
  drain(worker);
  io.run();  // every reply posted so far runs
  CHECK(watch.expired());
  CHECK(ready == 0);
  // What it read stays in the store for the next reader.
  CHECK(undelivered(worker, 0) == std::vector<std::string>{"alarm-1"});
}

TEST_CASE_METHOD(
    store_site,
    "outbox reader: an event's record and a message an older firegated queued are both read back into the "
    "event") {
  config::gateway_file site;
  site.gateway.id = "gw-1";
  auto old = event_of("queued-before-records", event_kind::device_offline);
  old.detail = "no answer from 127.0.0.1:1502 unit 3";
  auto fire = event_of("fire-1", event_kind::fire_alarm);
  fire.point = "state";
  fire.value = 1;
  worker.call([&](store& s) {
    old.seq = s.next_event_seq();
    s.record_event(old, lane::fault, "t/event", event_json(old, site, nullptr));  // as firegated 0.1 did
    fire.seq = s.next_event_seq();
    s.record_event(fire, lane::alarm, "t/alarm", to_record(fire));
    return 0;
  });
  const auto held = outbox_reader::make(io.get_executor(), worker, {0, 8, true, {}, "test uplink"}, [] {});
  auto& reader = *held;
  reader.notify();
  run_until(io, [&] { return reader.queued() == 2; });
  const auto& first = reader.take();
  REQUIRE(first.event);
  CHECK(first.event->id == "fire-1");
  CHECK(first.event->point == "state");
  CHECK(first.event->value == 1);
  const auto& second = reader.take();
  REQUIRE(second.event);
  CHECK(second.event->id == "queued-before-records");
  CHECK(second.event->kind == event_kind::device_offline);
  CHECK(second.event->detail == old.detail);
}
