// libFuzzer target: reading RTU responses from a byte stream (drivers/modbus/rtu_read.hpp), the
// code both RTU transports (serial line, RTU over TCP) run on what a device or a device server
// sends. A fake Asio stream hands out the fuzz bytes in chunk sizes the input chooses, and the
// coroutine reads responses back to back until the bytes run out. Checked:
//  - every read completes (the coroutine never hangs) and the last one ends with eof, once every
//    byte has been handed out;
//  - a PDU is returned only for bytes that are exactly encode_rtu_adu(expected unit, PDU): a valid
//    CRC and the unit asked for; never more than one RTU frame (256 bytes) consumed per read;
//  - each framing error is the right one for the bytes it consumed (malformed_frame for a head that
//    names no size, crc_mismatch, transaction_mismatch for another unit);
//  - the outcome does not depend on how the stream is chunked (the same run, whole reads).
//
// Input: [unit] [k | structured << 3] [k chunk sizes] then either the raw stream, or (structured)
// records [flags][length][bytes]: bit 0 appends the CRC, bit 1 then spoils it, bit 2 puts the
// expected unit first, so that valid frames are easy to reach.

#include "modbus/codec/rtu.hpp"
#include "modbus/modbus_error.hpp"
#include "modbus/rtu_read.hpp"

#include <boost/asio/append.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <cstdlib>
#include <span>
#include <vector>

namespace asio = boost::asio;
using namespace firegate::modbus;

namespace {

/// A read-only AsyncReadStream over fixed bytes: each read_some gives at most the next chunk size,
/// eof once everything was handed out. Completions are posted, never run inline.
class fake_stream {
 public:
  using executor_type = asio::io_context::executor_type;
  fake_stream(executor_type ex, std::span<const std::uint8_t> bytes, std::vector<std::size_t> chunks)
      : ex_(ex), bytes_(bytes), chunks_(std::move(chunks)) {}
  executor_type get_executor() { return ex_; }
  std::size_t position() const { return pos_; }

  template <typename MutableBuffers, typename Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    return asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        [this](auto handler, const MutableBuffers& bufs) {
          const std::size_t want = asio::buffer_size(bufs);
          boost::system::error_code ec;
          std::size_t n = 0;
          if (want > 0) {
            if (pos_ >= bytes_.size()) {
              ec = asio::error::eof;
            } else {
              n = std::min(want, bytes_.size() - pos_);
              if (!chunks_.empty()) n = std::min(n, chunks_[next_++ % chunks_.size()]);
              asio::buffer_copy(bufs, asio::buffer(bytes_.data() + pos_, n));
              pos_ += n;
            }
          }
          asio::post(ex_, asio::append(std::move(handler), ec, n));
        },
        token, buffers);
  }

 private:
  executor_type ex_;
  std::span<const std::uint8_t> bytes_;
  std::vector<std::size_t> chunks_;
  std::size_t next_{0};
  std::size_t pos_{0};
};

/// One read's outcome: what it consumed and what it gave.
struct outcome {
  std::size_t from{0}, to{0};
  std::error_code error;
  std::vector<std::uint8_t> pdu;
  bool operator==(const outcome&) const = default;
};

void check(const outcome& o, std::span<const std::uint8_t> stream, std::uint8_t unit) {
  if (o.to < o.from || o.to > stream.size()) std::abort();
  const auto consumed = stream.subspan(o.from, o.to - o.from);
  if (consumed.size() > max_rtu_adu_size) std::abort();
  if (!o.error) {
    // Exactly one valid frame for the unit asked, PDU and all.
    if (encode_rtu_adu(unit, o.pdu) != std::vector<std::uint8_t>(consumed.begin(), consumed.end()))
      std::abort();
    return;
  }
  if (o.error.category() != firegate::modbus::modbus_category()) {
    // An I/O error: only eof, and only once every byte has been handed out.
    if (o.error != std::error_code(boost::system::error_code(asio::error::eof)) || o.to != stream.size())
      std::abort();
    return;
  }
  if (consumed.size() < 3) std::abort();
  const auto size = rtu_response_size(consumed.first(3));
  switch (static_cast<modbus_errc>(o.error.value())) {
    case modbus_errc::malformed_frame:
      if (consumed.size() != 3 || (size && *size)) std::abort();
      break;
    case modbus_errc::crc_mismatch: {
      if (!size || !*size || **size != consumed.size()) std::abort();
      const auto d = decode_rtu_adu(consumed);
      if (d || d.error() != make_error_code(modbus_errc::crc_mismatch)) std::abort();
      break;
    }
    case modbus_errc::transaction_mismatch: {
      if (!size || !*size || **size != consumed.size()) std::abort();
      const auto d = decode_rtu_adu(consumed);
      if (!d || d->unit == unit) std::abort();
      break;
    }
    default:
      std::abort();  // nothing else is a framing error of a response
  }
}

std::vector<outcome> read_all(std::span<const std::uint8_t> stream, std::uint8_t unit,
                              std::vector<std::size_t> chunks) {
  asio::io_context io;
  fake_stream s(io.get_executor(), stream, std::move(chunks));
  std::vector<outcome> out;
  bool finished = false;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        std::vector<std::uint8_t> frame;  // reused from read to read, as the transports do
        for (;;) {
          outcome o;
          o.from = s.position();
          auto r = co_await read_rtu_response(s, unit, frame);
          o.to = s.position();
          if (r) {
            o.pdu = std::move(*r);
          } else {
            o.error = r.error();
          }
          out.push_back(o);
          if (o.error && o.error.category() != modbus_category()) break;  // eof
          if (o.to == o.from) std::abort();                               // no progress: would spin
        }
        finished = true;
      },
      [](std::exception_ptr e) {
        if (e) std::abort();
      });
  io.run();
  if (!finished) std::abort();  // the read never completed
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::uint8_t unit = data[0];
  const std::size_t k = data[1] & 7u;
  const bool structured = (data[1] & 8u) != 0;
  if (size < 2 + k) return 0;
  std::vector<std::size_t> chunks;
  for (std::size_t i = 0; i < k; ++i) chunks.push_back(1 + data[2 + i] % 32u);
  std::span<const std::uint8_t> body(data + 2 + k, size - 2 - k);

  std::vector<std::uint8_t> stream;
  if (!structured) {
    stream.assign(body.begin(), body.end());
  } else {
    for (std::size_t at = 0; at + 2 <= body.size();) {
      const std::uint8_t flags = body[at];
      const std::size_t len = std::min<std::size_t>(body[at + 1], body.size() - at - 2);
      std::vector<std::uint8_t> record(body.begin() + static_cast<std::ptrdiff_t>(at + 2),
                                       body.begin() + static_cast<std::ptrdiff_t>(at + 2 + len));
      at += 2 + len;
      if ((flags & 4u) && !record.empty()) record[0] = unit;
      if (flags & 1u) {
        const auto crc = crc16(record);
        record.push_back(static_cast<std::uint8_t>(crc & 0xFF));
        record.push_back(static_cast<std::uint8_t>(crc >> 8));
        if (flags & 2u)
          record[record.size() - 1 - static_cast<std::size_t>(flags >> 4) % record.size()] ^= 0x5A;
      }
      stream.insert(stream.end(), record.begin(), record.end());
    }
  }

  const auto chunked = read_all(stream, unit, chunks);
  for (const auto& o : chunked) check(o, stream, unit);
  if (chunked.empty() || !chunked.back().error) std::abort();
  // The same bytes read whole give the same outcomes: chunking must not change what is decoded.
  if (!chunks.empty() && read_all(stream, unit, {}) != chunked) std::abort();
  return 0;
}
