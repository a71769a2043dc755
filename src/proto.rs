//! Protobuf messages generated from `proto/*.proto` by prost (never edited by hand).
