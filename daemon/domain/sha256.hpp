#pragma once
// SHA-256 as lowercase hex: a configuration's revision, a platform command's fingerprint.
//
// Through OpenSSL's own SHA-256 functions, not EVP: EVP's first use loads OpenSSL's configuration
// and its providers, about 1.9 MiB resident for the daemon's life, on a box that may never use TLS
// (docs/performance.md). The functions are deprecated in OpenSSL 3, not removed.

#include <string>
#include <string_view>

namespace firegate {

class sha256 {
 public:
  sha256();
  ~sha256();
  sha256(const sha256&) = delete;
  sha256& operator=(const sha256&) = delete;
  sha256& update(std::string_view bytes);
  /// The digest of everything updated so far, as 64 hex digits; the object is then spent.
  std::string hex();

 private:
  struct context;
  context* ctx_;
};

/// The digest of `bytes` as 64 hex digits.
std::string sha256_hex(std::string_view bytes);

}  // namespace firegate
