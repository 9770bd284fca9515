package modelstream.flink;

import static modelstream.flink.TestBytes.utf8;
import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class JsonDataTypeTest {
    private static String of(String json) {
        return JsonDataType.of(utf8(json));
    }

    @Test
    void readsTheTopLevelMember() {
        assertEquals("wine", of("{\"dataType\": \"wine\", \"alcohol\": 13.2}"));
        assertEquals("wine", of(" \n{\"alcohol\": 13.2, \"dataType\":\"wine\"}"));
    }

    @Test
    void skipsNestedObjectsAndArraysBeforeIt() {
        String json = "{\"features\": {\"dataType\": \"inner\", \"x\": [1, {\"dataType\": \"deeper\"}]},"
                + " \"list\": [[\"dataType\"], {\"a\": {}}], \"n\": null, \"dataType\": \"outer\"}";
        assertEquals("outer", of(json));
        assertEquals("", of("{\"features\": {\"dataType\": \"inner\"}}"));
    }

    @Test
    void decodesEscapedStrings() {
        assertEquals("w\"i\\ne\u00e9\n", of("{\"dataType\": \"w\\\"i\\\\ne\\u00e9\\n\"}"));
        assertEquals("wine", of("{\"data\\u0054ype\": \"wine\"}")); // an escaped name is the same name
        assertEquals("ünï", of("{\"dataType\": \"ünï\"}"));
    }

    @Test
    void theFirstDataTypeDecidesAndOnlyAStringCounts() {
        assertEquals("a", of("{\"dataType\": \"a\", \"dataType\": \"b\"}"));
        assertEquals("", of("{\"dataType\": 7, \"dataType\": \"b\"}"));
        assertEquals("", of("{\"dataType\": null}"));
        assertEquals("", of("{\"dataType\": {\"name\": \"wine\"}}"));
        assertEquals("", of("{\"dataType\": [\"wine\"]}"));
        assertEquals("", of("{\"datatype\": \"wine\"}"));
    }

    @Test
    void malformedOrNonObjectJsonHasNone() {
        assertEquals("", of("{\"a\": [1, 2}, \"dataType\": \"wine\"}"));
        assertEquals("", of("{\"a\": tru, \"dataType\": \"wine\"}"));
        assertEquals("", of("{\"a\": 1"));
        assertEquals("", of("{\"dataType\": \"wi"));
        assertEquals("", of("[{\"dataType\": \"wine\"}]"));
        assertEquals("", of("\"wine\""));
        assertEquals("", of(""));
        assertEquals("", JsonDataType.of(new byte[] {'{', (byte) 0xff, '}'}));
    }
}
