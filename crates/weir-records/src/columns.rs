//! A column of a frame as a plain vector, whatever its stored type (cast first), with nulls
//! as a fixed value: what the aggregator, the search layout and the search read rows with.

use polars::prelude::*;

/// As text (nulls: "").
pub fn strings(df: &DataFrame, name: &str) -> PolarsResult<Vec<String>> {
    let c = df.column(name)?.cast(&DataType::String)?;
    Ok(c.str()?
        .downcast_iter()
        .flat_map(|a| a.iter().map(|v| v.unwrap_or_default().to_string()))
        .collect())
}

/// As u64 (nulls: 0).
pub fn u64s(df: &DataFrame, name: &str) -> PolarsResult<Vec<u64>> {
    let c = df.column(name)?.cast(&DataType::UInt64)?;
    Ok(c.u64()?
        .downcast_iter()
        .flat_map(|a| a.iter().map(|v| v.copied().unwrap_or(0)))
        .collect())
}

/// As i64 (nulls: 0): timestamps as ns since the epoch.
pub fn i64s(df: &DataFrame, name: &str) -> PolarsResult<Vec<i64>> {
    let c = df.column(name)?.cast(&DataType::Int64)?;
    Ok(c.i64()?
        .downcast_iter()
        .flat_map(|a| a.iter().map(|v| v.copied().unwrap_or(0)))
        .collect())
}

/// As f64 (nulls: NaN).
pub fn f64s(df: &DataFrame, name: &str) -> PolarsResult<Vec<f64>> {
    let c = df.column(name)?.cast(&DataType::Float64)?;
    Ok(c.f64()?
        .downcast_iter()
        .flat_map(|a| a.iter().map(|v| v.copied().unwrap_or(f64::NAN)))
        .collect())
}
