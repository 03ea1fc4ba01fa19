//! The AWS path, checked here without AWS: the DynamoDB store on moto, the real Lambda
//! binaries answering the events AWS sends them, and the client's Cognito calls against moto's
//! user pool. What moto cannot do (PreSignUp triggers, one identity per user, real credentials,
//! `AWS::Cognito::*` resources in templates, Lambda invocation) is done here by hand or checked
//! elsewhere (`cfn-lint` on the template); `docs/aws.md` lists it.

mod auth;
mod deploy;
mod lambda;
mod storage;
mod support;
