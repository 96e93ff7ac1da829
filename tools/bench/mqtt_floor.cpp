// The floor under firegated's MQTT ingest: what Paho C++ alone costs to take a QoS 1 message, with
// nothing done with it. Subscribes to TOPIC at QoS 1, counts messages, and exits after COUNT of
// them or after 3 s without one, printing how many arrived. tools/bench/mqtt_floor.py runs it (and
// mosquitto_sub, the same measure with libmosquitto) and takes their CPU time a message.
//
// Usage: mqtt_floor PORT TOPIC COUNT

#include <mqtt/async_client.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: mqtt_floor PORT TOPIC COUNT\n");
    return 2;
  }
  const long wanted = std::atol(argv[3]);
  std::atomic<long> received{0};
  mqtt::async_client client(std::string("tcp://127.0.0.1:") + argv[1], "mqtt-floor");
  client.set_message_callback([&](mqtt::const_message_ptr) { ++received; });
  client.connect(mqtt::connect_options_builder().clean_session(true).finalize())->wait();
  client.subscribe(argv[2], 1)->wait();
  std::puts("ready");
  std::fflush(stdout);
  long last = -1;
  for (int idle = 0; received.load() < wanted && idle < 300;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    idle = received.load() == last ? idle + 1 : 0;
    last = received.load();
  }
  client.disconnect()->wait();
  std::printf("received %ld\n", received.load());
  return received.load() == wanted ? 0 : 1;
}
