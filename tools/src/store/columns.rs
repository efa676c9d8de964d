//! The one row shape of a stored tick: the columns of `tickwire export` (CSV, Parquet) and of the
//! PostgreSQL sink's table, in order, with how each is read from a [`Tick`]. One list, so the three
//! cannot drift apart; `docs/storage.md` documents it for users.
//!
//! A field group the tick does not carry (its [`valid`] bit clear) gives nulls, never zeros that
//! look like data. Prices stay exact: a [`Cell::Price`] is the engine's fixed-point integer at
//! 10^7 ([`PRICE_SCALE`]), written as a decimal of scale [`PRICE_DECIMALS`] (Parquet
//! `DECIMAL(19,7)`, PostgreSQL `numeric(19,7)`, CSV `1418.05`). Times are instants in ns since the
//! Unix epoch, stored as timestamps with a time zone (UTC instants; Parquet's zone is
//! `Asia/Kolkata`, the exchanges' own).

use tickwire_engine::price::{PRICE_DECIMALS, PRICE_SCALE};
use tickwire_engine::tick::{valid, DEPTH_LEVELS};
use tickwire_engine::Tick;

/// Decimal precision of a price column: every `i64` at scale 7 fits (19 digits).
pub const PRICE_PRECISION: u8 = 19;

/// What a column holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Type {
    /// UTF-8 text (exchange, symbol).
    Text,
    /// A signed 64-bit integer (quantities, OI, sequence numbers).
    Int,
    /// A fixed-point price ([`Cell::Price`]).
    Price,
    /// A 64-bit float (greeks).
    Float,
    /// An instant, ns since the Unix epoch.
    Time,
}

/// Which part of a row a column reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Exchange,
    Symbol,
    Seq,
    ExchangeTs,
    RecvTs,
    Ltp,
    LastQty,
    AvgPrice,
    Volume,
    TotalBuy,
    TotalSell,
    Open,
    High,
    Low,
    Close,
    Oi,
    OiHigh,
    OiLow,
    Iv,
    Delta,
    Gamma,
    Theta,
    Vega,
    Rho,
    BidPrice(u8),
    BidQty(u8),
    BidOrders(u8),
    AskPrice(u8),
    AskQty(u8),
    AskOrders(u8),
}

/// One column: its name, type and where it comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Column {
    /// The column's name (`ltp`, `bid_price_1`).
    pub name: &'static str,
    /// Its type.
    pub ty: Type,
    /// False only for the columns every row has (names, sequence, receive time).
    pub nullable: bool,
    field: Field,
}

/// One value of a row.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Cell<'a> {
    /// No value: the tick does not carry the column's group.
    Null,
    /// Text.
    Text(&'a str),
    /// An integer.
    Int(i64),
    /// A price at [`PRICE_SCALE`].
    Price(i64),
    /// A float.
    Float(f64),
    /// ns since the Unix epoch.
    Time(i64),
}

const fn col(name: &'static str, ty: Type, nullable: bool, field: Field) -> Column {
    Column {
        name,
        ty,
        nullable,
        field,
    }
}

macro_rules! depth_cols {
    ($($n:literal),*) => {
        [$(
            col(concat!("bid_price_", $n), Type::Price, true, Field::BidPrice($n - 1)),
            col(concat!("bid_qty_", $n), Type::Int, true, Field::BidQty($n - 1)),
            col(concat!("bid_orders_", $n), Type::Int, true, Field::BidOrders($n - 1)),
        )*
        $(
            col(concat!("ask_price_", $n), Type::Price, true, Field::AskPrice($n - 1)),
            col(concat!("ask_qty_", $n), Type::Int, true, Field::AskQty($n - 1)),
            col(concat!("ask_orders_", $n), Type::Int, true, Field::AskOrders($n - 1)),
        )*]
    };
}

const HEAD: [Column; 24] = [
    col("exchange", Type::Text, false, Field::Exchange),
    col("symbol", Type::Text, false, Field::Symbol),
    col("seq", Type::Int, false, Field::Seq),
    col("exchange_ts", Type::Time, true, Field::ExchangeTs),
    col("recv_ts", Type::Time, false, Field::RecvTs),
    col("ltp", Type::Price, true, Field::Ltp),
    col("last_qty", Type::Int, true, Field::LastQty),
    col("avg_price", Type::Price, true, Field::AvgPrice),
    col("volume", Type::Int, true, Field::Volume),
    col("total_buy_qty", Type::Int, true, Field::TotalBuy),
    col("total_sell_qty", Type::Int, true, Field::TotalSell),
    col("open", Type::Price, true, Field::Open),
    col("high", Type::Price, true, Field::High),
    col("low", Type::Price, true, Field::Low),
    col("close", Type::Price, true, Field::Close),
    col("oi", Type::Int, true, Field::Oi),
    col("oi_day_high", Type::Int, true, Field::OiHigh),
    col("oi_day_low", Type::Int, true, Field::OiLow),
    col("iv", Type::Float, true, Field::Iv),
    col("delta", Type::Float, true, Field::Delta),
    col("gamma", Type::Float, true, Field::Gamma),
    col("theta", Type::Float, true, Field::Theta),
    col("vega", Type::Float, true, Field::Vega),
    col("rho", Type::Float, true, Field::Rho),
];

const DEPTH: [Column; 6 * DEPTH_LEVELS] = depth_cols!(1, 2, 3, 4, 5);

/// Every column, in order.
pub const COLUMNS: [Column; HEAD.len() + DEPTH.len()] = {
    let mut out = [HEAD[0]; HEAD.len() + DEPTH.len()];
    let mut i = 0;
    while i < HEAD.len() {
        out[i] = HEAD[i];
        i += 1;
    }
    let mut j = 0;
    while j < DEPTH.len() {
        out[HEAD.len() + j] = DEPTH[j];
        j += 1;
    }
    out
};

const _: () = assert!(PRICE_SCALE == 10_i64.pow(PRICE_DECIMALS));
const _: () = assert!(COLUMNS.len() == 54);

/// A quantity as a signed column value (saturating: no broker sends one past `i64::MAX`).
fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Column {
    /// This column's value in the row of `tick` for `exchange:symbol`.
    #[inline]
    pub fn cell<'a>(&self, exchange: &'a str, symbol: &'a str, t: &Tick) -> Cell<'a> {
        let has = |g: u32| t.valid & g != 0;
        let group = |g: u32, c: Cell<'a>| if has(g) { c } else { Cell::Null };
        match self.field {
            Field::Exchange => Cell::Text(exchange),
            Field::Symbol => Cell::Text(symbol),
            Field::Seq => Cell::Int(int(t.seq)),
            Field::ExchangeTs if t.exchange_ts_ns == 0 => Cell::Null,
            Field::ExchangeTs => Cell::Time(t.exchange_ts_ns),
            Field::RecvTs => Cell::Time(t.recv_ts_ns),
            Field::Ltp => group(valid::LTP, Cell::Price(t.ltp)),
            Field::LastQty => group(valid::LTP, Cell::Int(int(t.last_qty))),
            Field::AvgPrice => group(valid::QUOTE, Cell::Price(t.avg_price)),
            Field::Volume => group(valid::QUOTE, Cell::Int(int(t.volume))),
            Field::TotalBuy => group(valid::QUOTE, Cell::Int(int(t.total_buy_qty))),
            Field::TotalSell => group(valid::QUOTE, Cell::Int(int(t.total_sell_qty))),
            Field::Open => group(valid::QUOTE, Cell::Price(t.open)),
            Field::High => group(valid::QUOTE, Cell::Price(t.high)),
            Field::Low => group(valid::QUOTE, Cell::Price(t.low)),
            Field::Close => group(valid::QUOTE, Cell::Price(t.close)),
            Field::Oi => group(valid::OI, Cell::Int(int(t.oi))),
            Field::OiHigh => group(valid::OI, Cell::Int(int(t.oi_day_high))),
            Field::OiLow => group(valid::OI, Cell::Int(int(t.oi_day_low))),
            Field::Iv => group(valid::GREEKS, Cell::Float(t.iv)),
            Field::Delta => group(valid::GREEKS, Cell::Float(t.delta)),
            Field::Gamma => group(valid::GREEKS, Cell::Float(t.gamma)),
            Field::Theta => group(valid::GREEKS, Cell::Float(t.theta)),
            Field::Vega => group(valid::GREEKS, Cell::Float(t.vega)),
            Field::Rho => group(valid::GREEKS, Cell::Float(t.rho)),
            Field::BidPrice(l) => group(valid::DEPTH, Cell::Price(t.bids[l as usize].price)),
            Field::BidQty(l) => group(valid::DEPTH, Cell::Int(t.bids[l as usize].qty as i64)),
            Field::BidOrders(l) => group(valid::DEPTH, Cell::Int(t.bids[l as usize].orders as i64)),
            Field::AskPrice(l) => group(valid::DEPTH, Cell::Price(t.asks[l as usize].price)),
            Field::AskQty(l) => group(valid::DEPTH, Cell::Int(t.asks[l as usize].qty as i64)),
            Field::AskOrders(l) => group(valid::DEPTH, Cell::Int(t.asks[l as usize].orders as i64)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_in_order() {
        let names: Vec<&str> = COLUMNS.iter().map(|c| c.name).collect();
        assert_eq!(
            &names[..6],
            ["exchange", "symbol", "seq", "exchange_ts", "recv_ts", "ltp"]
        );
        assert_eq!(names[24], "bid_price_1");
        assert_eq!(names[27], "bid_price_2");
        assert_eq!(names[39], "ask_price_1");
        assert_eq!(names[53], "ask_orders_5");
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len());
    }

    #[test]
    fn groups_not_carried_are_null() {
        let mut t = Tick::new(3);
        t.valid = valid::LTP;
        t.seq = 7;
        t.ltp = 14_180_500_000;
        t.recv_ts_ns = 5;
        t.volume = 99; // not valid: must not show
        let cell = |name: &str, t: &Tick| {
            let c = COLUMNS.iter().find(|c| c.name == name).unwrap();
            c.cell("NSE", "SBIN", t)
        };
        assert_eq!(cell("exchange", &t), Cell::Text("NSE"));
        assert_eq!(cell("seq", &t), Cell::Int(7));
        assert_eq!(cell("ltp", &t), Cell::Price(14_180_500_000));
        assert_eq!(cell("volume", &t), Cell::Null);
        assert_eq!(cell("exchange_ts", &t), Cell::Null);
        assert_eq!(cell("recv_ts", &t), Cell::Time(5));
        assert_eq!(cell("bid_price_1", &t), Cell::Null);
        t.valid |= valid::DEPTH;
        t.asks[4].orders = 3;
        assert_eq!(cell("ask_orders_5", &t), Cell::Int(3));
    }
}
