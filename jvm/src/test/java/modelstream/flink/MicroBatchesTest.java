package modelstream.flink;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.apache.flink.types.Row;
import org.junit.jupiter.api.Test;

class MicroBatchesTest {
    private static byte[] frame(int partition, long offset, byte[] value) {
        return RecordFrame.of(RecordEncoding.WINE_RECORD, 0, partition, offset, 0, null, value);
    }

    @Test
    void aFullBatchGoesAtOnceAndHoldsItsRecordsInOrder() {
        MicroBatches batches = new MicroBatches(2, 5);
        MicroBatches.Added first = batches.add("wine", frame(0, 7, new byte[] {1}), 100);
        assertNull(first.full);
        assertEquals(105, first.openedUntil);
        MicroBatches.Added second = batches.add("wine", frame(1, 8, new byte[] {2, 3}), 101);
        assertEquals("wine", second.full.getField(0));
        byte[] expected = TestBytes.concat(frame(0, 7, new byte[] {1}), frame(1, 8, new byte[] {2, 3}));
        assertArrayEquals(expected, (byte[]) second.full.getField(1));
        assertEquals(List.of(), batches.all(200));
        assertEquals(1, batches.batchesOut());
        assertEquals(2, batches.recordsOut());
        assertEquals(5, batches.lastDelayMs());
    }

    @Test
    void dataTypesBatchApartAndGoWhenTheirDeadlinePasses() {
        MicroBatches batches = new MicroBatches(100, 5);
        batches.add("a", frame(0, 1, new byte[0]), 100);
        batches.add("b", frame(0, 2, new byte[0]), 103);
        batches.add("a", frame(0, 3, new byte[0]), 104);
        assertEquals(List.of(), batches.due(104));
        List<Row> due = batches.due(105);
        assertEquals(1, due.size());
        assertEquals("a", due.get(0).getField(0));
        assertEquals(2 * RecordFrame.FIXED, ((byte[]) due.get(0).getField(1)).length);
        // "a" reopens with a new deadline: the old timer at 105 must not send it early
        assertEquals(111, batches.add("a", frame(0, 4, new byte[0]), 106).openedUntil);
        assertEquals(List.of("b"), batches.due(108).stream().map(r -> r.getField(0)).toList());
        assertEquals(List.of("a"), batches.all(200).stream().map(r -> r.getField(0)).toList());
        assertEquals(List.of(), batches.all(200));
    }

    @Test
    void aBatchOfOneGoesAtOnce() {
        MicroBatches.Added added = new MicroBatches(1, 5).add("wine", frame(0, 0, new byte[] {9}), 0);
        assertArrayEquals(frame(0, 0, new byte[] {9}), (byte[]) added.full.getField(1));
    }

    /** Sends {@code perMs} records each ms for {@code ms} ms, taking what is due as a timer would. */
    private static int feed(MicroBatches batches, int perMs, long fromMs, long ms) {
        int sent = 0;
        for (long t = fromMs; t < fromMs + ms; t++) {
            for (int i = 0; i < perMs; i++) {
                batches.add("wine", frame(0, 0, new byte[0]), t);
            }
            sent += batches.due(t).size();
        }
        return sent;
    }

    private static long openedFor(MicroBatches batches, long nowMs) {
        batches.all(nowMs);
        return batches.add("wine", frame(0, 0, new byte[0]), nowMs).openedUntil - nowMs;
    }

    @Test
    void batchesWaitLongerOnlyWhileRecordsArriveFast() {
        // 2 ms up to 10,000 records/s, in proportion above it, up to 20 ms
        MicroBatches batches = new MicroBatches(100_000, 2, 20, 10_000);
        // 1 record per ms: a batch opened at t holds the records of t, t+1 and t+2
        assertEquals(166, feed(batches, 1, 0, 500));
        assertEquals(2, openedFor(batches, 500));
        // 50 records per ms: the delay grows to 10 ms, batches of ~550 records
        int fast = feed(batches, 50, 501, 2000);
        assertTrue(fast < 2000 / 10, "batches at 50 records/ms: " + fast);
        long busy = openedFor(batches, 2501);
        assertTrue(busy >= 9 && busy <= 10, "delay at 50 records/ms: " + busy);
        // far faster: at most 20 ms
        assertEquals(20, batches.delayMs(1000));
        // back to 1 per ms: the delay is 2 ms again within a few batches
        feed(batches, 1, 2502, 100);
        assertEquals(2, openedFor(batches, 2602));
    }

    @Test
    void aLullBringsTheRateDown() {
        MicroBatches batches = new MicroBatches(100_000, 2, 20, 10_000);
        feed(batches, 1000, 0, 1000);
        batches.due(1020);
        assertEquals(List.of(), batches.all(1020));
        // one record after a second of silence waits 2 ms, not the busy delay
        assertEquals(2002, batches.add("wine", frame(0, 0, new byte[0]), 2000).openedUntil);
    }

    @Test
    void withoutABusyRateTheDelayIsFixed() {
        MicroBatches batches = new MicroBatches(100_000, 2);
        feed(batches, 100, 0, 100);
        assertEquals(2, openedFor(batches, 100));
    }

    @Test
    void idleDataTypesAreForgotten() {
        MicroBatches batches = new MicroBatches(100_000, 2, 20, 10_000);
        batches.add("a", frame(0, 0, new byte[0]), 0);
        batches.add("b", frame(0, 0, new byte[0]), 15);
        assertEquals(1, batches.due(2).size());
        assertEquals(2, batches.dataTypes());
        assertEquals(1, batches.due(30).size()); // "b" goes; "a" has been idle for 28 ms
        assertEquals(1, batches.dataTypes());
        batches.all(100);
        assertEquals(0, batches.dataTypes());
    }

    @Test
    void noDelayAtLowRatesStillGrowsUnderLoad() {
        MicroBatches batches = new MicroBatches(100_000, 0, 20, 10_000);
        assertEquals(0, batches.delayMs(5));
        assertEquals(10, batches.delayMs(100));
    }
}
