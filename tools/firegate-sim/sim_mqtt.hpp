#pragma once
// firegate-sim --mqtt: wireless sensors and bridges publishing to a broker as the shipped MQTT
// ingest profiles say (config/profiles/mqtt): a Zigbee bridge's JSON, an NB-IoT platform's push, an
// electrical-fire unit's alarm codes. Each message is built from the profile's own field paths,
// so a profile's mapping and the simulator's messages cannot drift apart.
//
// Standard input (--commands), one a line:
//   ID POINT VALUE     set a point (booleans 0/1) and publish the device's state
//   ID publish         publish its state as it is
//   ID flood N         publish its state N times back to back (a stuck sensor)
//   ID raw TEXT        publish TEXT as the payload on its topic (malformed messages)
//   ID huge BYTES      publish a JSON object of about BYTES bytes
//   ID repeat          publish its last message again, counter unchanged (a duplicate)
//   ID silent 0|1      stop or resume its periodic messages

#include <cstdint>
#include <string>
#include <vector>

namespace firegate::sim {

struct mqtt_options {
  std::string broker;                ///< host:port
  std::vector<std::string> devices;  ///< PROFILE:ID or PROFILE:PREFIX*N
  std::string profiles_dir;
  unsigned interval_ms{0};  ///< each device publishes its state this often (0: on commands only)
  double rate{0};           ///< messages a second across all devices, round robin (a benchmark)
  double seconds{0};        ///< with rate: stop after this long (0: never)
  int qos{1};
  bool commands{false};
};

int run_mqtt(const mqtt_options& options);

}  // namespace firegate::sim
