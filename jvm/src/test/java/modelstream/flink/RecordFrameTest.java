package modelstream.flink;

import static modelstream.flink.TestBytes.bytes;
import static modelstream.flink.TestBytes.concat;
import static modelstream.flink.TestBytes.utf8;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class RecordFrameTest {
    @Test
    void framesEveryPartBigEndian() {
        RecordEncoding encoding = new RecordEncoding(RecordEncoding.PROTOBUF, "a.Bé");
        byte[] framed = RecordFrame.of(encoding, 0x0102, 0x03040506, 0x0708090a0b0c0d0eL, 1_700_000_000_123L,
                utf8("k1"), bytes(0xca, 0xfe, 0x00));
        byte[] expected = concat(
                bytes(3), // encoding
                bytes(0x01, 0x02), // topic index
                bytes(0x03, 0x04, 0x05, 0x06), // partition
                bytes(0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e), // offset
                bytes(0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x7b), // timestamp 1700000000123
                bytes(0, 0, 0, 2), utf8("k1"), // key
                bytes(0, 5), bytes('a', '.', 'B', 0xc3, 0xa9), // meta
                bytes(0, 0, 0, 3), bytes(0xca, 0xfe, 0x00)); // value
        assertArrayEquals(expected, framed);
        assertEquals(RecordFrame.FIXED + 2 + 5 + 3, framed.length);
    }

    @Test
    void aNullKeyIsLengthMinusOneAndANullValueIsEmpty() {
        byte[] framed = RecordFrame.of(RecordEncoding.WINE_RECORD, 65_535, 0, 0, -1, null, null);
        byte[] expected = concat(
                bytes(0, 0xff, 0xff, 0, 0, 0, 0),
                bytes(0, 0, 0, 0, 0, 0, 0, 0),
                bytes(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), // no timestamp: -1
                bytes(0xff, 0xff, 0xff, 0xff), // null key
                bytes(0, 0), // meta ""
                bytes(0, 0, 0, 0)); // no value
        assertArrayEquals(expected, framed);
        byte[] emptyKey = RecordFrame.of(RecordEncoding.WINE_RECORD, 0, 0, 0, 0, new byte[0], new byte[0]);
        assertArrayEquals(bytes(0, 0, 0, 0), java.util.Arrays.copyOfRange(emptyKey, 23, 27));
    }
}
