// Proves the Modbus codec builds and checks frames byte for byte as the specification gives them,
// and maps every malformed or mismatched answer to its error code.

#include "modbus/codec/mbap.hpp"
#include "modbus/codec/pdu.hpp"
#include "modbus/modbus_error.hpp"

#include <catch2/catch.hpp>

using namespace firegate::modbus;
using bytes = std::vector<std::uint8_t>;

TEST_CASE("read input registers request encodes as the spec's MBAP frame") {
  bytes pdu;
  encode_read_request({function_code::read_input_registers, 0x0000, 4}, pdu);
  REQUIRE(pdu == bytes{0x04, 0x00, 0x00, 0x00, 0x04});
  // MBAP: transaction 1, protocol 0, length 6 (unit + 5 PDU bytes), unit 1.
  REQUIRE(encode_adu(1, 1, pdu) ==
          bytes{0x00, 0x01, 0x00, 0x00, 0x00, 0x06, 0x01, 0x04, 0x00, 0x00, 0x00, 0x04});
}

TEST_CASE("spec example: read holding registers 108-110 (MODBUS Application Protocol §6.3)") {
  bytes pdu;
  encode_read_request({function_code::read_holding_registers, 0x006B, 3}, pdu);
  REQUIRE(pdu == bytes{0x03, 0x00, 0x6B, 0x00, 0x03});
  const bytes response{0x03, 0x06, 0x02, 0x2B, 0x00, 0x00, 0x00, 0x64};
  auto regs = decode_read_response({function_code::read_holding_registers, 0x006B, 3}, response);
  REQUIRE(regs.has_value());
  REQUIRE(*regs == std::vector<std::uint16_t>{0x022B, 0x0000, 0x0064});
}

TEST_CASE("read response round-trips through encode and decode") {
  const std::vector<std::uint16_t> values{1, 2, 215, 2400};
  bytes pdu;
  encode_read_response(function_code::read_input_registers, values, pdu);
  REQUIRE(pdu == bytes{0x04, 0x08, 0x00, 0x01, 0x00, 0x02, 0x00, 0xD7, 0x09, 0x60});
  auto regs = decode_read_response({function_code::read_input_registers, 0, 4}, pdu);
  REQUIRE(regs.has_value());
  REQUIRE(*regs == values);
}

TEST_CASE("response checking rejects what does not answer the request") {
  const read_request req{function_code::read_input_registers, 0, 2};
  SECTION("exception response maps to its code") {
    auto r = decode_read_response(req, bytes{0x84, 0x02});
    REQUIRE(r.error() == make_error_code(modbus_errc::illegal_data_address));
  }
  SECTION("gateway exceptions 10 and 11") {
    REQUIRE(decode_read_response(req, bytes{0x84, 0x0B}).error() == modbus_errc::gateway_target_failed);
    REQUIRE(decode_read_response(req, bytes{0x84, 0x0A}).error() == modbus_errc::gateway_path_unavailable);
  }
  SECTION("exception code outside 1-11") {
    REQUIRE(decode_read_response(req, bytes{0x84, 0x09}).error() == modbus_errc::unknown_exception);
    REQUIRE(decode_read_response(req, bytes{0x84, 0x0C}).error() == modbus_errc::unknown_exception);
  }
  SECTION("another function echoed") {
    REQUIRE(decode_read_response(req, bytes{0x03, 0x04, 0, 1, 0, 2}).error() ==
            modbus_errc::function_mismatch);
  }
  SECTION("byte count disagrees with the requested count") {
    REQUIRE(decode_read_response(req, bytes{0x04, 0x02, 0, 1}).error() == modbus_errc::byte_count_mismatch);
  }
  SECTION("byte count disagrees with the frame length") {
    REQUIRE(decode_read_response(req, bytes{0x04, 0x04, 0, 1, 0}).error() ==
            modbus_errc::byte_count_mismatch);
  }
  SECTION("empty and truncated frames") {
    REQUIRE(decode_read_response(req, bytes{}).error() == modbus_errc::malformed_frame);
    REQUIRE(decode_read_response(req, bytes{0x04}).error() == modbus_errc::malformed_frame);
    REQUIRE(decode_read_response(req, bytes{0x84}).error() == modbus_errc::malformed_frame);
  }
}

TEST_CASE("server side decodes requests and refuses what it cannot serve") {
  auto ok = decode_read_request(bytes{0x04, 0x00, 0x10, 0x00, 0x7D});
  REQUIRE(ok.has_value());
  REQUIRE(*ok == read_request{function_code::read_input_registers, 0x0010, 125});
  REQUIRE(decode_read_request(bytes{0x04, 0x00, 0x00, 0x00, 0x7E}).error() ==
          modbus_errc::illegal_data_value);
  REQUIRE(decode_read_request(bytes{0x04, 0x00, 0x00, 0x00, 0x00}).error() ==
          modbus_errc::illegal_data_value);
  REQUIRE(decode_read_request(bytes{0x2B, 0x0E, 0x01, 0x00}).error() == modbus_errc::illegal_function);
  REQUIRE(decode_read_request(bytes{0x03, 0x00}).error() == modbus_errc::malformed_frame);
  bytes ex;
  encode_exception(0x2B, 1, ex);
  REQUIRE(ex == bytes{0xAB, 0x01});
}

TEST_CASE("MBAP header checks protocol id and length") {
  std::array<std::uint8_t, 7> h{0x12, 0x34, 0x00, 0x00, 0x00, 0x06, 0x11};
  auto ok = decode_mbap(h);
  REQUIRE(ok.has_value());
  REQUIRE(ok->transaction_id == 0x1234);
  REQUIRE(ok->unit_id == 0x11);
  REQUIRE(ok->pdu_size() == 5);
  h[2] = 0x01;  // not Modbus
  REQUIRE(decode_mbap(h).error() == modbus_errc::malformed_frame);
  h[2] = 0x00;
  h[5] = 0x01;  // unit id only, no function code
  REQUIRE(decode_mbap(h).error() == modbus_errc::malformed_frame);
  h[4] = 0x01;  // 0x0101 > 254
  REQUIRE(decode_mbap(h).error() == modbus_errc::malformed_frame);
}

TEST_CASE("error messages say what happened") {
  REQUIRE(make_error_code(modbus_errc::illegal_data_address).message().find("illegal data address") !=
          std::string::npos);
  REQUIRE(make_error_code(modbus_errc::timeout).message() == "no response before the timeout");
  REQUIRE(std::string(modbus_category().name()) == "modbus");
}
