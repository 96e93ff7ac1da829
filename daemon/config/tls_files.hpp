#pragma once
// Checks of the TLS files a site file names ([uplink.mqtt.tls], an MQTT bus's [buses.tls]) with
// OpenSSL, the library that will load them: a CA or certificate file that holds no PEM certificate,
// a key that cannot be read (or not with the password given), and a certificate that is not the
// key's are refused by --check-config, not found at the first connection.

#include <string>

namespace firegate::config {

/// "" when `path` holds at least one PEM certificate; else what is wrong with it.
std::string check_pem_certificates(const std::string& path);
/// "" when `path` holds a PEM private key readable with `password` (empty: none); else what is wrong.
std::string check_pem_private_key(const std::string& path, const std::string& password);
/// "" when the first certificate of `cert` belongs to the key in `key`; else what is wrong.
std::string check_key_pair(const std::string& cert, const std::string& key, const std::string& password);

}  // namespace firegate::config
