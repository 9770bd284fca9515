package modelstream.flink;

import org.apache.flink.api.common.typeinfo.PrimitiveArrayTypeInfo;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.connector.kafka.source.reader.deserializer.KafkaRecordDeserializationSchema;
import org.apache.flink.kafka.shaded.org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.flink.types.Row;
import org.apache.flink.util.Collector;

/**
 * Reads a models-topic record as Row(partition INT, offset BIGINT, value BYTES, contentType STRING), the
 * value untouched and contentType the UTF-8 {@code content-type} header ("" without one; a record schema
 * carries {@code application/x-protobuf; messageType=modelstream.RecordSchema}).
 *
 * <p>PyFlink's value-only deserializers drop where a record came from; with this schema a record the job
 * cannot use is dead-lettered with its exact partition and offset. A tombstone (null value) becomes empty
 * bytes, which the job rejects as undecodable rather than failing on.
 */
public final class ModelRecordDeserializationSchema implements KafkaRecordDeserializationSchema<Row> {
    private static final long serialVersionUID = 1L;
    private static final byte[] EMPTY = new byte[0];

    @Override
    public void deserialize(ConsumerRecord<byte[], byte[]> record, Collector<Row> out) {
        byte[] value = record.value();
        String contentType = DataRecordDeserializationSchema.header(
                record.headers(), DataRecordDeserializationSchema.CONTENT_TYPE);
        out.collect(Row.of(
                record.partition(),
                record.offset(),
                value == null ? EMPTY : value,
                contentType == null ? "" : contentType));
    }

    @Override
    public TypeInformation<Row> getProducedType() {
        return Types.ROW(
                Types.INT, Types.LONG, PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO, Types.STRING);
    }
}
