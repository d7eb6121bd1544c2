pub mod dynamo;
pub mod records;
pub mod s3;
pub mod secrets;
