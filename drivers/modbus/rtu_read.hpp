#pragma once
// Reading one RTU response from a byte stream, written once for both streams that carry RTU: a
// serial port and a TCP connection to a serial device server. RTU has no length field: the unit,
// the function and (for reads) the byte count tell the frame's size (codec/rtu.hpp).

#include "codec/rtu.hpp"
#include "modbus_error.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <vector>

namespace firegate::modbus {

/// Reads the response to a request for `unit` into `frame` and returns its PDU once its size, CRC
/// and unit check out. An I/O error is returned as it is (the caller knows whether its deadline
/// expired); framing errors are malformed_frame, crc_mismatch or transaction_mismatch.
template <typename Stream>
boost::asio::awaitable<result<std::vector<std::uint8_t>>> read_rtu_response(
    Stream& stream, std::uint8_t unit, std::vector<std::uint8_t>& frame) {
  namespace asio = boost::asio;
  boost::system::error_code ec;
  frame.resize(3);
  co_await asio::async_read(stream, asio::buffer(frame), asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return std::error_code(ec);
  auto size = rtu_response_size(frame);
  if (!size) co_return size.error();
  if (!*size) co_return make_error_code(modbus_errc::malformed_frame);
  frame.resize(**size);
  co_await asio::async_read(stream, asio::buffer(frame.data() + 3, frame.size() - 3),
                            asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return std::error_code(ec);
  auto decoded = decode_rtu_adu(frame);
  if (!decoded) co_return decoded.error();
  if (decoded->unit != unit) co_return make_error_code(modbus_errc::transaction_mismatch);
  co_return std::vector<std::uint8_t>(decoded->pdu.begin(), decoded->pdu.end());
}

}  // namespace firegate::modbus
