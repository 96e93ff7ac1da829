// Proves the Modbus codec builds and checks frames byte for byte as the specification gives them
// (its own examples for every function, CRC vectors for RTU) and maps every malformed or mismatched
// answer to its error code.

#include "modbus/codec/mbap.hpp"
#include "modbus/codec/pdu.hpp"
#include "modbus/codec/rtu.hpp"
#include "modbus/modbus_error.hpp"

#include <catch2/catch.hpp>

using namespace firegate::modbus;
using bytes = std::vector<std::uint8_t>;

TEST_CASE("read input registers request encodes as the spec's MBAP frame") {
  bytes pdu;
  encode_request({function_code::read_input_registers, 0x0000, 4}, pdu);
  REQUIRE(pdu == bytes{0x04, 0x00, 0x00, 0x00, 0x04});
  // MBAP: transaction 1, protocol 0, length 6 (unit + 5 PDU bytes), unit 1.
  REQUIRE(encode_adu(1, 1, pdu) ==
          bytes{0x00, 0x01, 0x00, 0x00, 0x00, 0x06, 0x01, 0x04, 0x00, 0x00, 0x00, 0x04});
}

TEST_CASE("spec example: read holding registers 108-110 (MODBUS Application Protocol §6.3)") {
  bytes pdu;
  encode_request({function_code::read_holding_registers, 0x006B, 3}, pdu);
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

TEST_CASE("decoding into a kept buffer: each response's registers alone - none after a refused one") {
  // As a bus's poll decodes: one buffer for every block, its memory kept.
  std::vector<std::uint16_t> kept;
  const bytes four{0x04, 0x08, 0x00, 0x01, 0x00, 0x02, 0x00, 0xD7, 0x09, 0x60};
  REQUIRE(!decode_read_response({function_code::read_input_registers, 0, 4}, four, kept));
  REQUIRE(kept == std::vector<std::uint16_t>{1, 2, 215, 2400});
  const bytes one{0x03, 0x02, 0x12, 0x34};
  REQUIRE(!decode_read_response({function_code::read_holding_registers, 7, 1}, one, kept));
  REQUIRE(kept == std::vector<std::uint16_t>{0x1234});
  REQUIRE(decode_read_response({function_code::read_input_registers, 0, 2}, bytes{0x84, 0x02}, kept) ==
          modbus_errc::illegal_data_address);
  REQUIRE(kept.empty());
  // And an ADU into a buffer that held a longer one (MBAP: transaction 2, length 6, unit 9).
  bytes adu(40, 0xEE);
  encode_adu(2, 9, bytes{0x03, 0x00, 0x6B, 0x00, 0x03}, adu);
  REQUIRE(adu == bytes{0x00, 0x02, 0x00, 0x00, 0x00, 0x06, 0x09, 0x03, 0x00, 0x6B, 0x00, 0x03});
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
  auto ok = decode_request(bytes{0x04, 0x00, 0x10, 0x00, 0x7D});
  REQUIRE(ok.has_value());
  REQUIRE(std::get<read_request>(*ok) == read_request{function_code::read_input_registers, 0x0010, 125});
  REQUIRE(decode_request(bytes{0x04, 0x00, 0x00, 0x00, 0x7E}).error() == modbus_errc::illegal_data_value);
  REQUIRE(decode_request(bytes{0x04, 0x00, 0x00, 0x00, 0x00}).error() == modbus_errc::illegal_data_value);
  REQUIRE(decode_request(bytes{0x01, 0x00, 0x00, 0x07, 0xD0}).has_value());  // 2000 coils: the limit
  REQUIRE(decode_request(bytes{0x01, 0x00, 0x00, 0x07, 0xD1}).error() == modbus_errc::illegal_data_value);
  REQUIRE(decode_request(bytes{0x2B, 0x0E, 0x01, 0x00}).error() == modbus_errc::illegal_function);
  REQUIRE(decode_request(bytes{0x03, 0x00}).error() == modbus_errc::malformed_frame);
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

// ---- the specification's examples for the other functions (MODBUS Application Protocol V1.1b3) ----

TEST_CASE("fc 01 read coils 20-38 (§6.1 example)") {
  const read_request req{function_code::read_coils, 0x0013, 19};
  bytes pdu;
  encode_request(req, pdu);
  REQUIRE(pdu == bytes{0x01, 0x00, 0x13, 0x00, 0x13});
  auto bits = decode_read_bits_response(req, bytes{0x01, 0x03, 0xCD, 0x6B, 0x05});
  REQUIRE(bits.has_value());
  REQUIRE(bits->size() == 19);
  // 0xCD = coils 27..20 as 1100 1101: coil 20 is the lowest bit.
  CHECK(std::vector<bool>(bits->begin(), bits->begin() + 8) ==
        std::vector<bool>{true, false, true, true, false, false, true, true});
  CHECK((*bits)[16] == true);  // 0x05: coils 36 and 38
  CHECK((*bits)[17] == false);
  CHECK((*bits)[18] == true);
  std::vector<std::uint8_t> back;
  encode_read_bits_response(function_code::read_coils, *bits, back);
  CHECK(back == bytes{0x01, 0x03, 0xCD, 0x6B, 0x05});
  CHECK(decode_read_bits_response(req, bytes{0x01, 0x02, 0xCD, 0x6B}).error() ==
        modbus_errc::byte_count_mismatch);
}

TEST_CASE("fc 02 read discrete inputs 197-218 (§6.2 example)") {
  const read_request req{function_code::read_discrete_inputs, 0x00C4, 22};
  auto bits = decode_read_bits_response(req, bytes{0x02, 0x03, 0xAC, 0xDB, 0x35});
  REQUIRE(bits.has_value());
  CHECK(bits->size() == 22);
  CHECK((*bits)[0] == false);  // 0xAC = 1010 1100
  CHECK((*bits)[2] == true);
  CHECK((*bits)[21] == true);  // 0x35 = 0011 0101: input 218 is bit 5
}

TEST_CASE("fc 05 write single coil 173 ON (§6.5 example) and its echo") {
  const write_request w{function_code::write_single_coil, 0x00AC, {}, {true}};
  bytes pdu;
  encode_request(w, pdu);
  REQUIRE(pdu == bytes{0x05, 0x00, 0xAC, 0xFF, 0x00});
  CHECK_FALSE(check_write_response(w, pdu));
  CHECK(check_write_response(w, bytes{0x05, 0x00, 0xAC, 0x00, 0x00}) == modbus_errc::echo_mismatch);
  CHECK(check_write_response(w, bytes{0x85, 0x03}) == modbus_errc::illegal_data_value);
  auto decoded = decode_request(pdu);
  REQUIRE(decoded.has_value());
  CHECK(std::get<write_request>(*decoded) == w);
  // §6.5: any value other than FF00 or 0000 is illegal.
  CHECK(decode_request(bytes{0x05, 0x00, 0xAC, 0x12, 0x34}).error() == modbus_errc::illegal_data_value);
}

TEST_CASE("fc 06 write register 2 = 3 (§6.6 example) and its echo") {
  const write_request w{function_code::write_single_register, 0x0001, {0x0003}, {}};
  bytes pdu;
  encode_request(w, pdu);
  REQUIRE(pdu == bytes{0x06, 0x00, 0x01, 0x00, 0x03});
  CHECK_FALSE(check_write_response(w, pdu));
  CHECK(check_write_response(w, bytes{0x06, 0x00, 0x02, 0x00, 0x03}) == modbus_errc::echo_mismatch);
  CHECK(check_write_response(w, bytes{0x06, 0x00, 0x01, 0x00}) == modbus_errc::malformed_frame);
  bytes reply;
  encode_write_response(w, reply);
  CHECK(reply == pdu);
}

TEST_CASE("fc 15 write 10 coils from 20 (§6.11 example)") {
  const write_request w{function_code::write_multiple_coils,
                        0x0013,
                        {},
                        {true, false, true, true, false, false, true, true, true, false}};
  bytes pdu;
  encode_request(w, pdu);
  REQUIRE(pdu == bytes{0x0F, 0x00, 0x13, 0x00, 0x0A, 0x02, 0xCD, 0x01});
  CHECK_FALSE(check_write_response(w, bytes{0x0F, 0x00, 0x13, 0x00, 0x0A}));
  CHECK(check_write_response(w, bytes{0x0F, 0x00, 0x13, 0x00, 0x09}) == modbus_errc::echo_mismatch);
  auto decoded = decode_request(pdu);
  REQUIRE(decoded.has_value());
  CHECK(std::get<write_request>(*decoded) == w);
  bytes reply;
  encode_write_response(w, reply);
  CHECK(reply == bytes{0x0F, 0x00, 0x13, 0x00, 0x0A});
  // Byte count must be ceil(10 / 8) = 2.
  CHECK(decode_request(bytes{0x0F, 0x00, 0x13, 0x00, 0x0A, 0x01, 0xCD}).error() ==
        modbus_errc::illegal_data_value);
}

TEST_CASE("fc 16 write registers 2-3 (§6.12 example)") {
  const write_request w{function_code::write_multiple_registers, 0x0001, {0x000A, 0x0102}, {}};
  bytes pdu;
  encode_request(w, pdu);
  REQUIRE(pdu == bytes{0x10, 0x00, 0x01, 0x00, 0x02, 0x04, 0x00, 0x0A, 0x01, 0x02});
  CHECK_FALSE(check_write_response(w, bytes{0x10, 0x00, 0x01, 0x00, 0x02}));
  CHECK(check_write_response(w, bytes{0x06, 0x00, 0x01, 0x00, 0x02}) == modbus_errc::function_mismatch);
  auto decoded = decode_request(pdu);
  REQUIRE(decoded.has_value());
  CHECK(std::get<write_request>(*decoded) == w);
  CHECK(decode_request(bytes{0x10, 0x00, 0x01, 0x00, 0x00, 0x00}).error() == modbus_errc::illegal_data_value);
  CHECK(decode_request(bytes{0x10, 0x00, 0x01, 0x00, 0x02, 0x04, 0x00, 0x0A}).error() ==
        modbus_errc::illegal_data_value);  // byte count says 4, only 2 follow
}

// ---- RTU framing (MODBUS over Serial Line V1.02) ----

TEST_CASE("CRC-16/MODBUS vectors, low byte first on the wire") {
  CHECK(crc16(bytes{0x01, 0x03, 0x00, 0x00, 0x00, 0x0A}) == 0xCDC5);
  CHECK(crc16(bytes{0x01, 0x03, 0x00, 0x00, 0x00, 0x01}) == 0x0A84);
  CHECK(crc16(bytes{0x11, 0x03, 0x00, 0x6B, 0x00, 0x03}) == 0x8776);
  const std::string check = "123456789";  // the catalogue check value of CRC-16/MODBUS
  CHECK(crc16(std::span(reinterpret_cast<const std::uint8_t*>(check.data()), check.size())) == 0x4B37);
}

TEST_CASE("RTU frames encode and decode; a flipped bit is a CRC mismatch") {
  const bytes pdu{0x03, 0x00, 0x6B, 0x00, 0x03};
  const auto adu = encode_rtu_adu(0x11, pdu);
  REQUIRE(adu == bytes{0x11, 0x03, 0x00, 0x6B, 0x00, 0x03, 0x76, 0x87});
  auto frame = decode_rtu_adu(adu);
  REQUIRE(frame.has_value());
  CHECK(frame->unit == 0x11);
  CHECK(bytes(frame->pdu.begin(), frame->pdu.end()) == pdu);
  auto corrupted = adu;
  corrupted[3] ^= 0x01;
  CHECK(decode_rtu_adu(corrupted).error() == modbus_errc::crc_mismatch);
  CHECK(decode_rtu_adu(bytes{0x11, 0x03, 0x76}).error() == modbus_errc::malformed_frame);
  CHECK(decode_rtu_adu(bytes(257, 0)).error() == modbus_errc::malformed_frame);
}

TEST_CASE("RTU response size from the first bytes") {
  auto size = [](bytes head) { return rtu_response_size(head); };
  CHECK(size({0x01}).value() == std::nullopt);                 // need the function code
  CHECK(size({0x01, 0x03}).value() == std::nullopt);           // need the byte count
  CHECK(size({0x01, 0x03, 0x08}).value() == std::size_t{13});  // 3 + 8 data + 2 CRC
  CHECK(size({0x01, 0x01, 0x03}).value() == std::size_t{8});
  CHECK(size({0x01, 0x84}).value() == std::size_t{5});  // exception
  CHECK(size({0x01, 0x06}).value() == std::size_t{8});
  CHECK(size({0x01, 0x10}).value() == std::size_t{8});
  CHECK(size({0x01, 0x2B}).error() == modbus_errc::malformed_frame);
  CHECK(size({0x01, 0x03, 250}).value() == std::size_t{255});
  CHECK(size({0x01, 0x03, 251}).error() == modbus_errc::malformed_frame);  // found by the fuzzer
}

TEST_CASE("RTU request size from the first bytes - the server's framing") {
  auto size = [](bytes head) { return rtu_request_size(head); };
  CHECK(size({0x01}).value() == std::nullopt);
  CHECK(size({0x01, 0x03}).value() == std::size_t{8});
  CHECK(size({0x01, 0x05}).value() == std::size_t{8});
  CHECK(size({0x01, 0x10, 0x00, 0x01, 0x00, 0x02}).value() == std::nullopt);  // need the byte count
  // §6.12's example: write 2 registers from 0x0001 = 13 bytes with the unit and CRC.
  CHECK(size({0x01, 0x10, 0x00, 0x01, 0x00, 0x02, 0x04}).value() == std::size_t{13});
  CHECK(size({0x01, 0x0F, 0x00, 0x13, 0x00, 0x0A, 0x02}).value() == std::size_t{11});
  CHECK(size({0x01, 0x2B}).error() == modbus_errc::malformed_frame);
  CHECK(size({0x01, 0x83}).error() == modbus_errc::malformed_frame);  // a master never sends these
  CHECK(size({0x01, 0x10, 0x00, 0x00, 0x00, 0x7B, 246}).value() == std::size_t{255});  // 123 registers
  // Found by the fuzzer: a byte count of 249 would have meant a 258-byte frame.
  CHECK(size({0x01, 0x10, 0x00, 0x01, 0x00, 0x00, 249}).error() == modbus_errc::malformed_frame);
}

TEST_CASE("RTU timing: 3.5 characters of 11 bits, 1.75 ms above 19200 baud (§2.5.1.1)") {
  using std::chrono::microseconds;
  CHECK(rtu_char_time(9600) == microseconds(1146));
  CHECK(rtu_frame_silence(9600) == microseconds(4011));
  CHECK(rtu_frame_silence(19200) == microseconds(2006));
  CHECK(rtu_frame_silence(38400) == microseconds(1750));
  CHECK(rtu_frame_silence(115200) == microseconds(1750));
}
