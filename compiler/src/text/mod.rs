//! The `.kir` text format: a deterministic printer and a parser with line/column errors.
