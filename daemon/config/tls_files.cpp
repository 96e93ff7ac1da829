#include "tls_files.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cstdio>
#include <memory>

namespace firegate::config {

namespace {

struct file_closer {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using file_ptr = std::unique_ptr<std::FILE, file_closer>;

struct x509_free {
  void operator()(X509* x) const { X509_free(x); }
};
struct pkey_free {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using x509_ptr = std::unique_ptr<X509, x509_free>;
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_free>;

/// OpenSSL's reason for the last failure, and its queue emptied.
std::string openssl_reason() {
  const auto code = ERR_peek_last_error();
  std::string reason =
      code ? ERR_reason_error_string(code) ? ERR_reason_error_string(code) : "unknown" : "no PEM data";
  ERR_clear_error();
  return reason;
}

int password_callback(char* buf, int size, int, void* user) {
  const auto* password = static_cast<const std::string*>(user);
  if (password == nullptr || password->empty() || static_cast<int>(password->size()) > size) return 0;
  password->copy(buf, password->size());
  return static_cast<int>(password->size());
}

x509_ptr first_certificate(const std::string& path) {
  file_ptr f(std::fopen(path.c_str(), "r"));
  if (!f) return nullptr;
  return x509_ptr(PEM_read_X509(f.get(), nullptr, nullptr, nullptr));
}

pkey_ptr private_key(const std::string& path, const std::string& password) {
  file_ptr f(std::fopen(path.c_str(), "r"));
  if (!f) return nullptr;
  return pkey_ptr(
      PEM_read_PrivateKey(f.get(), nullptr, password_callback, const_cast<std::string*>(&password)));
}

}  // namespace

std::string check_pem_certificates(const std::string& path) {
  if (first_certificate(path)) return {};
  return "holds no PEM certificate (" + openssl_reason() +
         "); give the certificate file in PEM form (-----BEGIN CERTIFICATE-----), converting a DER file with "
         "openssl x509 -inform der -in FILE -out FILE.pem";
}

std::string check_pem_private_key(const std::string& path, const std::string& password) {
  if (private_key(path, password)) return {};
  const auto reason = openssl_reason();
  if (reason.find("bad decrypt") != std::string::npos || reason.find("bad password") != std::string::npos ||
      reason.find("interrupted or cancelled") != std::string::npos)
    return "is an encrypted key that key_password does not open (" + reason +
           "); give the key's password in key_password";
  return "holds no PEM private key (" + reason +
         "); give the key file in PEM form (-----BEGIN PRIVATE KEY----- or -----BEGIN EC PRIVATE KEY-----)";
}

std::string check_key_pair(const std::string& cert, const std::string& key, const std::string& password) {
  auto x = first_certificate(cert);
  auto k = private_key(key, password);
  ERR_clear_error();
  if (!x || !k) return {};  // reported by the checks of each file
  if (X509_check_private_key(x.get(), k.get()) == 1) return {};
  ERR_clear_error();
  return "the certificate " + cert + " is not the key " + key +
         "'s: the broker would refuse the connection; give the certificate issued for this key, or the key "
         "it was issued for";
}

}  // namespace firegate::config
