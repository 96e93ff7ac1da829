#include "sha256.hpp"

#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>

#include <fmt/format.h>

namespace firegate {

struct sha256::context {
  SHA256_CTX ctx;
};

sha256::sha256() : ctx_(new context) {
  SHA256_Init(&ctx_->ctx);
}

sha256::~sha256() {
  delete ctx_;
}

sha256& sha256::update(std::string_view bytes) {
  SHA256_Update(&ctx_->ctx, bytes.data(), bytes.size());
  return *this;
}

std::string sha256::hex() {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256_Final(digest, &ctx_->ctx);
  std::string out;
  out.reserve(2 * sizeof digest);
  for (const auto byte : digest) out += fmt::format("{:02x}", byte);
  return out;
}

std::string sha256_hex(std::string_view bytes) {
  return sha256().update(bytes).hex();
}

}  // namespace firegate
