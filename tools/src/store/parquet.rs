//! The Parquet writer of `tickwire export --format parquet`: the [`COLUMNS`] as typed Arrow
//! columns, Snappy-compressed, a row group every [`ROW_GROUP_ROWS`] rows.
//!
//! Types: text → `Utf8` (Parquet dictionary-encodes it on disk, so a symbol repeated a million
//! times is stored about once per page; readers get plain strings, not categoricals); integers →
//! `Int64`; prices → `Decimal128(19, 7)`, the engine's fixed-point integer as is, so exact; greeks
//! → `Float64`; times → `Timestamp(Nanosecond, "Asia/Kolkata")` (UTC instants, shown in IST).
//! Nullability follows each column's [`Column::nullable`](super::columns::Column).
//!
//! Rows are appended to one Arrow builder per column; a full group is turned into a
//! `RecordBatch` and written as one row group, so memory stays bounded by one group whatever the
//! length of the export.

use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::{
    Decimal128Builder, Float64Builder, Int64Builder, StringBuilder, TimestampNanosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use tickwire_engine::price::PRICE_DECIMALS;
use tickwire_engine::Tick;

use super::columns::{Cell, Column, Type, COLUMNS, PRICE_PRECISION};
use super::writer::{Staged, TickWriter};

/// Rows per row group: large enough for good compression and fast scans, small enough that the
/// builders and the encoder hold a few tens of MB at most.
pub const ROW_GROUP_ROWS: usize = 64 * 1024;

/// The time zone of the timestamp columns: the Indian exchanges' own.
pub const TIME_ZONE: &str = "Asia/Kolkata";

/// The Arrow type of a column of type `ty`.
pub fn arrow_type(ty: Type) -> DataType {
    match ty {
        Type::Text => DataType::Utf8,
        Type::Int => DataType::Int64,
        Type::Price => DataType::Decimal128(PRICE_PRECISION, PRICE_DECIMALS as i8),
        Type::Float => DataType::Float64,
        Type::Time => DataType::Timestamp(TimeUnit::Nanosecond, Some(TIME_ZONE.into())),
    }
}

/// The Arrow schema of an exported file: [`COLUMNS`] in order.
pub fn schema() -> SchemaRef {
    let fields: Vec<Field> = COLUMNS
        .iter()
        .map(|c| Field::new(c.name, arrow_type(c.ty), c.nullable))
        .collect();
    Arc::new(Schema::new(fields))
}

/// A Parquet or Arrow error, as the `io::Error` the writer API returns.
fn io_err(e: impl std::error::Error + Send + Sync + 'static) -> io::Error {
    io::Error::other(e)
}

/// One column's values of the row group being built.
enum Builder {
    Text(StringBuilder),
    Int(Int64Builder),
    Price(Decimal128Builder),
    Float(Float64Builder),
    Time(TimestampNanosecondBuilder),
}

impl Builder {
    fn new(c: &Column) -> Self {
        let n = ROW_GROUP_ROWS;
        match c.ty {
            // Exchange and symbol names: 16 bytes a row is plenty to start with.
            Type::Text => Builder::Text(StringBuilder::with_capacity(n, n * 16)),
            Type::Int => Builder::Int(Int64Builder::with_capacity(n)),
            Type::Price => Builder::Price(
                Decimal128Builder::with_capacity(n).with_data_type(arrow_type(Type::Price)),
            ),
            Type::Float => Builder::Float(Float64Builder::with_capacity(n)),
            Type::Time => Builder::Time(
                TimestampNanosecondBuilder::with_capacity(n).with_data_type(arrow_type(Type::Time)),
            ),
        }
    }

    /// Appends `cell`, which is of this column's type or null (as [`Column::cell`] gives it).
    #[inline]
    fn append(&mut self, cell: Cell<'_>) {
        match (self, cell) {
            (Builder::Text(b), Cell::Text(s)) => b.append_value(s),
            (Builder::Int(b), Cell::Int(v)) => b.append_value(v),
            (Builder::Price(b), Cell::Price(v)) => b.append_value(i128::from(v)),
            (Builder::Float(b), Cell::Float(v)) => b.append_value(v),
            (Builder::Time(b), Cell::Time(v)) => b.append_value(v),
            (Builder::Text(b), _) => b.append_null(),
            (Builder::Int(b), _) => b.append_null(),
            (Builder::Price(b), _) => b.append_null(),
            (Builder::Float(b), _) => b.append_null(),
            (Builder::Time(b), _) => b.append_null(),
        }
    }

    /// The column so far as an array; the builder starts over, empty.
    fn finish(&mut self) -> ArrayRef {
        match self {
            Builder::Text(b) => Arc::new(b.finish()),
            Builder::Int(b) => Arc::new(b.finish()),
            Builder::Price(b) => Arc::new(b.finish()),
            Builder::Float(b) => Arc::new(b.finish()),
            Builder::Time(b) => Arc::new(b.finish()),
        }
    }
}

/// Writes ticks as Parquet (see the module docs).
pub struct ParquetWriter {
    schema: SchemaRef,
    builders: Vec<Builder>,
    /// Rows in the builders, not yet written.
    pending: usize,
    writer: ArrowWriter<File>,
    staged: Staged,
    rows: u64,
}

impl std::fmt::Debug for ParquetWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParquetWriter")
            .field("staged", &self.staged)
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

impl ParquetWriter {
    /// Creates the file (as `PATH.partial` until [`TickWriter::finish`]).
    pub fn create(path: &Path) -> io::Result<Self> {
        let (file, staged) = Staged::create(path)?;
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .set_created_by(format!("tickwire {}", env!("CARGO_PKG_VERSION")))
            .build();
        let schema = schema();
        let writer = ArrowWriter::try_new(file, schema.clone(), Some(props)).map_err(io_err)?;
        Ok(ParquetWriter {
            schema,
            builders: COLUMNS.iter().map(Builder::new).collect(),
            pending: 0,
            writer,
            staged,
            rows: 0,
        })
    }

    /// Writes the rows in the builders as one row group.
    fn write_group(&mut self) -> io::Result<()> {
        if self.pending == 0 {
            return Ok(());
        }
        let columns: Vec<ArrayRef> = self.builders.iter_mut().map(Builder::finish).collect();
        self.pending = 0;
        let batch = RecordBatch::try_new(self.schema.clone(), columns).map_err(io_err)?;
        self.writer.write(&batch).map_err(io_err)?;
        // Close the group here rather than when the writer's own count says so: one batch, one
        // group, whatever the writer's other limits.
        self.writer.flush().map_err(io_err)
    }
}

impl TickWriter for ParquetWriter {
    fn write(&mut self, exchange: &str, symbol: &str, tick: &Tick) -> io::Result<()> {
        for (c, b) in COLUMNS.iter().zip(self.builders.iter_mut()) {
            b.append(c.cell(exchange, symbol, tick));
        }
        self.pending += 1;
        self.rows += 1;
        if self.pending == ROW_GROUP_ROWS {
            self.write_group()?;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> io::Result<u64> {
        self.write_group()?;
        let ParquetWriter {
            writer,
            staged,
            rows,
            ..
        } = *self;
        // into_inner writes the footer and flushes the writer's buffer into the file.
        let file = writer.into_inner().map_err(io_err)?;
        staged.commit(file)?;
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::writer::testing::{sample_ticks, T0};
    use crate::store::writer::{create, Format};
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Decimal128Type, Float64Type, Int64Type, TimestampNanosecondType};
    use arrow_array::{Array, RecordBatchReader};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::file::reader::FileReader;
    use parquet::file::serialized_reader::SerializedFileReader;

    fn read_back(path: &Path) -> (SchemaRef, Vec<RecordBatch>) {
        let file = File::open(path).unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .with_batch_size(1 << 20)
            .build()
            .unwrap();
        let schema = reader.schema();
        let batches = reader.collect::<Result<Vec<_>, _>>().unwrap();
        (schema, batches)
    }

    fn col<'a>(b: &'a RecordBatch, name: &str) -> &'a ArrayRef {
        b.column_by_name(name).unwrap()
    }

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        let mut w = create(Format::Parquet, &path).unwrap();
        let ticks = sample_ticks();
        for (ex, sym, t) in &ticks {
            w.write(ex, sym, t).unwrap();
        }
        assert_eq!(w.finish().unwrap(), 2);

        let (schema, batches) = read_back(&path);
        assert_eq!(
            schema,
            super::schema(),
            "types, nullability and time zone kept"
        );
        assert_eq!(
            schema.field_with_name("recv_ts").unwrap().data_type(),
            &DataType::Timestamp(TimeUnit::Nanosecond, Some("Asia/Kolkata".into()))
        );
        assert!(!schema.field_with_name("symbol").unwrap().is_nullable());
        assert!(schema.field_with_name("ltp").unwrap().is_nullable());
        assert_eq!(batches.len(), 1);
        let b = &batches[0];
        assert_eq!(b.num_rows(), 2);

        let text = |n: &str, r: usize| col(b, n).as_string::<i32>().value(r).to_string();
        let int = |n: &str| col(b, n).as_primitive::<Int64Type>().clone();
        let px = |n: &str| col(b, n).as_primitive::<Decimal128Type>().clone();
        let fl = |n: &str| col(b, n).as_primitive::<Float64Type>().clone();
        let ts = |n: &str| col(b, n).as_primitive::<TimestampNanosecondType>().clone();

        assert_eq!(text("exchange", 0), "NSE");
        assert_eq!(text("symbol", 1), "NIFTY,26DEC 24000 CE");
        assert_eq!(int("seq").values(), &[1, 18_446_744_073]);
        assert!(ts("exchange_ts").is_null(0));
        assert_eq!(ts("exchange_ts").value(1), T0 + 1);
        assert_eq!(
            ts("recv_ts").values(),
            &[T0 + 123_456_789, T0 + 500_000_000]
        );
        assert_eq!(px("ltp").value(0), 8_123_500_000);
        assert_eq!(px("ltp").value(1), -125_000_000);
        assert_eq!(px("ltp").value_as_string(0), "812.3500000");
        assert_eq!(int("last_qty").value(1), i64::MAX);
        assert_eq!(px("avg_price").value(1), i128::from(i64::MAX));
        assert_eq!(px("low").value(1), i128::from(i64::MIN));
        assert_eq!(px("low").value_as_string(1), "-922337203685.4775808");
        assert_eq!(px("open").value(1), -1);
        assert_eq!(int("oi").value(1), 123_456_789_012);
        assert_eq!(fl("iv").value(1), 0.1834);
        assert_eq!(fl("vega").value(1), 1e-300);
        assert!(fl("rho").value(1).is_sign_negative());
        assert_eq!(px("bid_price_1").value(1), 990_500_000);
        assert_eq!(px("ask_price_5").value(1), 1_051_000_000);
        assert_eq!(int("ask_orders_5").value(1), i64::from(u32::MAX));
        assert_eq!(int("bid_qty_3").value(1), 30);
        // The LTP-only tick: every other group null, even where the struct holds a value.
        for c in COLUMNS.iter().skip(5) {
            let carried = matches!(c.name, "ltp" | "last_qty");
            assert_eq!(col(b, c.name).is_null(0), !carried, "{}", c.name);
            assert!(col(b, c.name).is_valid(1), "{}", c.name);
        }
    }

    #[test]
    fn row_groups_of_64k_snappy() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.parquet");
        let mut w = create(Format::Parquet, &path).unwrap();
        let (ex, sym, mut t) = sample_ticks()[1];
        let n = ROW_GROUP_ROWS + 10;
        for i in 0..n {
            t.seq = i as u64;
            w.write(ex, sym, &t).unwrap();
        }
        assert_eq!(w.finish().unwrap(), n as u64);

        let reader = SerializedFileReader::new(File::open(&path).unwrap()).unwrap();
        let meta = reader.metadata();
        assert_eq!(meta.num_row_groups(), 2);
        assert_eq!(meta.row_group(0).num_rows(), ROW_GROUP_ROWS as i64);
        assert_eq!(meta.row_group(1).num_rows(), 10);
        assert_eq!(
            meta.row_group(0).column(0).compression(),
            Compression::SNAPPY
        );

        let (_, batches) = read_back(&path);
        let seqs: Vec<i64> = batches
            .iter()
            .flat_map(|b| col(b, "seq").as_primitive::<Int64Type>().values().to_vec())
            .collect();
        assert_eq!(seqs, (0..n as i64).collect::<Vec<_>>());
    }

    #[test]
    fn empty_export_is_a_valid_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.parquet");
        let w = create(Format::Parquet, &path).unwrap();
        assert_eq!(w.finish().unwrap(), 0);
        let (schema, batches) = read_back(&path);
        assert_eq!(schema.fields().len(), COLUMNS.len());
        assert!(batches.iter().all(|b| b.num_rows() == 0));
    }
}
