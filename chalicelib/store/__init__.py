"""All DynamoDB, SQS and API Gateway management access lives here; the domain code above it has no boto3."""
