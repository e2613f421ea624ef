//! Target sets from a DynamoDB table (`dynamodb://TABLE`, the deployment database of SaaS
//! rollouts): every item, read with paginated `Scan`s (consistent reads), its string, number
//! and boolean attributes as the target's fields; attributes of other types (lists, maps,
//! sets, binary) are left out. At most [`MAX_ITEMS`] items.

use super::Aws;
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::BTreeMap;

/// Most items read from one table.
pub const MAX_ITEMS: usize = 1_000_000;

/// Why a table could not be read; the message names the table.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the DynamoDB table {table}: {message}")]
pub struct ScanError {
    pub table: String,
    pub message: String,
}

/// The table name of `dynamodb://TABLE`.
pub fn table_of(url: &str) -> Option<&str> {
    url.strip_prefix("dynamodb://")
        .filter(|t| !t.is_empty() && !t.contains('/'))
}

/// The DynamoDB client of the process's AWS configuration.
pub async fn client(aws: &Aws) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(aws.base().await)
}

/// Every item of `table`, flattened, sorted by `id`: a table has no order of its own, and waves
/// slice a set in its order, so the same items always make the same waves.
pub async fn scan(client: &aws_sdk_dynamodb::Client, table: &str) -> Result<Vec<BTreeMap<String, String>>, ScanError> {
    let fail = |message: String| ScanError {
        table: table.to_string(),
        message,
    };
    let mut out = Vec::new();
    let mut start = None;
    loop {
        let page = client
            .scan()
            .table_name(table)
            .consistent_read(true)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(|e| fail(aws_sdk_dynamodb::error::DisplayErrorContext(&e).to_string()))?;
        for item in page.items() {
            out.push(flatten(item));
        }
        if out.len() > MAX_ITEMS {
            return Err(fail(format!("it holds more than {MAX_ITEMS} items")));
        }
        match page.last_evaluated_key() {
            Some(key) if !key.is_empty() => start = Some(key.clone()),
            _ => {
                out.sort_by(|a, b| a.get("id").cmp(&b.get("id")));
                return Ok(out);
            }
        }
    }
}

/// An item's string, number and boolean attributes.
fn flatten(item: &std::collections::HashMap<String, AttributeValue>) -> BTreeMap<String, String> {
    item.iter()
        .filter_map(|(k, v)| {
            let value = match v {
                AttributeValue::S(s) | AttributeValue::N(s) => s.clone(),
                AttributeValue::Bool(b) => b.to_string(),
                _ => return None,
            };
            Some((k.clone(), value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_a_table() {
        assert_eq!(table_of("dynamodb://tenants"), Some("tenants"));
        assert_eq!(table_of("dynamodb://"), None);
        assert_eq!(table_of("dynamodb://a/b"), None);
        assert_eq!(table_of("s3://a/b"), None);
    }

    #[test]
    fn items_keep_strings_numbers_and_booleans() {
        let item = [
            ("id".to_string(), AttributeValue::S("t-1".into())),
            ("shard".to_string(), AttributeValue::N("7".into())),
            ("active".to_string(), AttributeValue::Bool(true)),
            ("tags".to_string(), AttributeValue::Ss(vec!["a".into()])),
        ]
        .into_iter()
        .collect();
        let flat = flatten(&item);
        assert_eq!(flat.len(), 3);
        assert_eq!(
            (flat["id"].as_str(), flat["shard"].as_str(), flat["active"].as_str()),
            ("t-1", "7", "true")
        );
    }
}
