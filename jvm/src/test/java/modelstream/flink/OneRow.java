package modelstream.flink;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.List;
import org.apache.flink.connector.kafka.source.reader.deserializer.KafkaRecordDeserializationSchema;
import org.apache.flink.kafka.shaded.org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.flink.types.Row;
import org.apache.flink.util.Collector;

/** The one row a deserialization schema makes of a Kafka record (tests). */
final class OneRow {
    private OneRow() {}

    static Row of(KafkaRecordDeserializationSchema<Row> schema, ConsumerRecord<byte[], byte[]> record) {
        List<Row> rows = new ArrayList<>();
        try {
            schema.deserialize(record, new Collector<>() {
                @Override
                public void collect(Row row) {
                    rows.add(row);
                }

                @Override
                public void close() {}
            });
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        assertEquals(1, rows.size());
        return rows.get(0);
    }
}
