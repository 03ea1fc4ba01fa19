//! Deploy and teardown, through the AWS SDK for Rust.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use aws_config::SdkConfig;
use aws_sdk_cloudformation as cfn;
use aws_sdk_cloudformation::types::{Capability, Parameter, StackStatus};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::{FUNCTIONS, Options, STAND_IN_SKIPS, package, sign_in, template};

/// How long a stack may take to create, update or delete before we stop waiting.
const STACK_TIMEOUT: Duration = Duration::from_secs(45 * 60);

/// What AWS said, in one line: its error code and message, or the transport failure.
fn why<E, R>(error: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match error.as_service_error() {
        Some(service) => format!(
            "{}: {}",
            service.code().unwrap_or("error"),
            service.message().unwrap_or("(no message)")
        ),
        None => {
            let mut text = error.to_string();
            let mut source = std::error::Error::source(error);
            while let Some(cause) = source {
                text.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            text
        }
    }
}

fn step(text: &str) {
    println!("==> {text}");
}

/// The SDK configuration, with credentials and a region, or a clear error naming what to set.
async fn sdk(options: &Options) -> Result<SdkConfig> {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(region) = &options.region {
        loader = loader.region(aws_config::Region::new(region.clone()));
    }
    if let Some(url) = &options.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    let config = loader.load().await;
    if config.region().is_none() {
        bail!(
            "no AWS region: pass --region (e.g. --region eu-west-1), or set AWS_REGION, or give \
             your AWS profile a region (`aws configure`)"
        );
    }
    use aws_credential_types::provider::ProvideCredentials as _;
    let provider = config.credentials_provider().context("no AWS credentials provider")?;
    if let Err(error) = provider.provide_credentials().await {
        bail!(
            "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and \
             AWS_SESSION_TOKEN for temporary ones), or AWS_PROFILE naming a profile in \
             ~/.aws/config (`aws configure`, or `aws sso login` for SSO). ({error})"
        );
    }
    Ok(config)
}

fn s3_client(config: &SdkConfig, options: &Options) -> aws_sdk_s3::Client {
    // A stand-in on 127.0.0.1 has no DNS for bucket subdomains: address buckets by path.
    let s3 = aws_sdk_s3::config::Builder::from(config)
        .force_path_style(options.endpoint_url.is_some())
        .build();
    aws_sdk_s3::Client::from_conf(s3)
}

/// The account the credentials belong to (and proof that they work).
async fn account(config: &SdkConfig) -> Result<String> {
    let me = aws_sdk_sts::Client::new(config).get_caller_identity().send().await.map_err(|e| {
        anyhow::anyhow!("AWS did not accept the credentials (sts:GetCallerIdentity): {}", why(&e))
    })?;
    me.account().map(str::to_owned).context("sts:GetCallerIdentity named no account")
}

/// The bucket the packages go to: one per account, region and stack.
fn bucket_name(account: &str, region: &str, stack: &str) -> String {
    let name = format!("{stack}-artifacts-{account}-{region}").to_ascii_lowercase();
    name.chars().take(63).collect::<String>().trim_end_matches('-').to_owned()
}

async fn ensure_bucket(s3: &aws_sdk_s3::Client, bucket: &str, region: &str) -> Result<()> {
    if s3.head_bucket().bucket(bucket).send().await.is_ok() {
        println!("    bucket {bucket}: present");
        return Ok(());
    }
    let mut create = s3.create_bucket().bucket(bucket);
    if region != "us-east-1" {
        create = create.create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(region))
                .build(),
        );
    }
    create
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("creating the artefacts bucket {bucket}: {}", why(&e)))?;
    println!("    bucket {bucket}: created");
    Ok(())
}

pub(crate) async fn deploy(options: &Options) -> Result<()> {
    let functions = options.functions.as_deref().context("--functions DIR")?;
    let text = std::fs::read_to_string(&options.template)
        .with_context(|| format!("reading the template {}", options.template.display()))?;
    let full = template::from_yaml(&text)
        .with_context(|| format!("reading the template {}", options.template.display()))?;
    let sign_in_env = sign_in::from_env(env_var)?;
    let packages = FUNCTIONS
        .iter()
        .map(|(name, parameter)| {
            Ok((*parameter, package::package(functions, &options.stack, name)?))
        })
        .collect::<Result<Vec<_>>>()?;

    step("Checking the AWS credentials");
    let config = sdk(options).await?;
    let region = config.region().map(ToString::to_string).unwrap_or_default();
    let account = account(&config).await?;
    println!("    account {account}, region {region}");
    if let Some(url) = &options.endpoint_url {
        println!("    every call goes to {url} (a local stand-in)");
    }

    let (template, left_out) = match options.endpoint_url {
        Some(_) => template::without(&full, STAND_IN_SKIPS),
        None => (full.clone(), Vec::new()),
    };
    if !left_out.is_empty() {
        println!(
            "    left out (a stand-in does not create {} from a template): {}",
            STAND_IN_SKIPS.iter().map(|t| format!("{t}*")).collect::<Vec<_>>().join(", "),
            left_out.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>().join(", ")
        );
    }

    step("Uploading the function packages");
    let s3 = s3_client(&config, options);
    let bucket = bucket_name(&account, &region, &options.stack);
    ensure_bucket(&s3, &bucket, &region).await?;
    let mut parameters =
        vec![parameter("ArtifactBucket", &bucket), parameter("Architecture", &options.arch)];
    for (name, package) in packages {
        let size = package.zip.len();
        s3.put_object()
            .bucket(&bucket)
            .key(&package.key)
            .body(package.zip.into())
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("uploading {}: {}", package.key, why(&e)))?;
        println!("    s3://{bucket}/{} ({:.1} MB)", package.key, size as f64 / 1e6);
        parameters.push(parameter(name, &package.key));
    }

    step(&format!("Deploying the stack {} (CloudFormation)", options.stack));
    for line in &sign_in_env.summary {
        println!("    {line}");
    }
    let cfn = cfn::Client::new(&config);
    let body = serde_json::to_string(&template).context("the template as JSON")?;
    let outputs =
        create_or_update(&cfn, &options.stack, &body, parameters, &sign_in_env.values).await?;

    step("What the stack holds");
    let created = stack_resources(&cfn, &options.stack).await?;
    let mut missing = Vec::new();
    for (id, kind) in template::resources(&full) {
        let condition = full["Resources"][id.as_str()]["Condition"].as_str();
        if created.contains(&id) {
            println!("    created      {kind:<40} {id}");
        } else if let Some(condition) = condition {
            // A sign-in provider that is off: the stack has it only when its condition holds.
            println!("    skipped      {kind:<40} {id} (only when {condition})");
        } else {
            println!("    NOT CREATED  {kind:<40} {id}");
            missing.push((id, kind));
        }
    }

    step("The app's profile");
    let iot_host = iot_endpoint(&config).await;
    let profile = profile_json(&outputs, &region, iot_host.as_deref());
    match profile {
        Ok(profile) => {
            let text = profile.to_json_pretty();
            println!("{text}");
            if let Some(path) = &options.profile_out {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)
                        .with_context(|| format!("creating {}", dir.display()))?;
                }
                std::fs::write(path, format!("{text}\n"))
                    .with_context(|| format!("writing {}", path.display()))?;
                println!(
                    "    written to {} (in the app: Change → AWS profile → Profile JSON → Apply)",
                    path.display()
                );
            }
        }
        Err(why) => println!("    no profile: {why:#}"),
    }
    if let Some(url) = output_value(&outputs, "HostedUiUrl") {
        // What Google's and Facebook's app settings need (docs/aws.md).
        println!("    hosted UI {url}; identity providers redirect to {url}/oauth2/idpresponse");
    }

    if missing.is_empty() {
        step("Deployed");
        return Ok(());
    }
    let names = missing.iter().map(|(id, kind)| format!("{id} ({kind})")).collect::<Vec<_>>();
    if options.endpoint_url.is_some() {
        println!(
            "==> Deployed what the stand-in supports. Not created: {}. A stand-in cannot run \
             the app end to end; AWS creates all of them.",
            names.join(", ")
        );
        Ok(())
    } else {
        bail!("the stack is complete but lacks {}", names.join(", "))
    }
}

fn parameter(key: &str, value: &str) -> Parameter {
    Parameter::builder().parameter_key(key).parameter_value(value).build()
}

/// An environment variable: None when it is not set.
fn env_var(name: &str) -> Result<Option<String>> {
    match std::env::var(name) {
        Ok(value) => Ok(Some(value)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => bail!("{name} is not valid UTF-8"),
    }
}

/// The stack's status, or None if there is no such stack.
async fn stack_status(cfn: &cfn::Client, stack: &str) -> Result<Option<cfn::types::Stack>> {
    match cfn.describe_stacks().stack_name(stack).send().await {
        Ok(out) => Ok(out.stacks().first().cloned()),
        Err(e) => {
            let message = why(&e);
            if message.contains("does not exist") {
                Ok(None)
            } else {
                bail!("cloudformation:DescribeStacks {stack}: {message}")
            }
        }
    }
}

/// Creates the stack or updates it. `optional` are parameters with a template default: a value
/// is passed as it is; None keeps the stack's value (UsePreviousValue) when it has one other
/// than the default "", and leaves the default otherwise (which is the same, and what a
/// stand-in needs: moto 5 fails UsePreviousValue for a parameter left at its default).
async fn create_or_update(
    cfn: &cfn::Client,
    stack: &str,
    body: &str,
    mut parameters: Vec<Parameter>,
    optional: &[(&'static str, Option<String>)],
) -> Result<Vec<cfn::types::Output>> {
    let capabilities = [Capability::CapabilityIam, Capability::CapabilityNamedIam];
    let existing = stack_status(cfn, stack).await?;
    if existing.as_ref().and_then(|s| s.stack_status()) == Some(&StackStatus::RollbackComplete) {
        println!("    the stack's first creation failed and was rolled back: deleting it first");
        cfn.delete_stack().stack_name(stack).send().await.context("DeleteStack")?;
        wait(cfn, stack, "DELETE").await?;
    }
    let exists = existing.is_some()
        && existing.as_ref().and_then(|s| s.stack_status()) != Some(&StackStatus::RollbackComplete);
    // What the stack has now (a NoEcho parameter shows as asterisks, never empty when set).
    let previous: BTreeMap<&str, &str> = match &existing {
        Some(current) if exists => current
            .parameters()
            .iter()
            .filter_map(|p| Some((p.parameter_key()?, p.parameter_value().unwrap_or_default())))
            .collect(),
        _ => BTreeMap::new(),
    };
    for (key, value) in optional {
        match value {
            Some(value) => parameters.push(parameter(key, value)),
            None if previous.get(key).is_some_and(|v| !v.is_empty()) => parameters
                .push(Parameter::builder().parameter_key(*key).use_previous_value(true).build()),
            None => {}
        }
    }
    let since = aws_smithy_types::DateTime::from(std::time::SystemTime::now());
    if exists {
        let update = cfn
            .update_stack()
            .stack_name(stack)
            .template_body(body)
            .set_parameters(Some(parameters))
            .set_capabilities(Some(capabilities.to_vec()))
            .send()
            .await;
        match update {
            Ok(_) => wait_reporting(cfn, stack, "UPDATE", since).await?,
            Err(e) if why(&e).contains("No updates") => {
                println!("    no changes: the stack is up to date");
            }
            Err(e) => bail!("cloudformation:UpdateStack: {}", why(&e)),
        }
    } else {
        cfn.create_stack()
            .stack_name(stack)
            .template_body(body)
            .set_parameters(Some(parameters))
            .set_capabilities(Some(capabilities.to_vec()))
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("cloudformation:CreateStack: {}", why(&e)))?;
        wait_reporting(cfn, stack, "CREATE", since).await?;
    }
    let stack = stack_status(cfn, stack).await?.context("the stack vanished")?;
    Ok(stack.outputs().to_vec())
}

/// Waits for the operation to end, printing each resource's progress as it comes.
async fn wait_reporting(
    cfn: &cfn::Client,
    stack: &str,
    operation: &str,
    since: aws_smithy_types::DateTime,
) -> Result<()> {
    let started = Instant::now();
    let mut seen = BTreeSet::new();
    loop {
        let events = cfn.describe_stack_events().stack_name(stack).send().await;
        if let Ok(events) = events {
            let mut fresh: Vec<_> = events
                .stack_events()
                .iter()
                .filter(|e| e.timestamp().is_some_and(|t| t.secs() >= since.secs() - 5))
                .filter(|e| seen.insert(e.event_id().unwrap_or_default().to_owned()))
                .collect();
            fresh.reverse(); // oldest first
            for event in fresh {
                let reason = event.resource_status_reason().unwrap_or_default();
                println!(
                    "    {:<22} {:<36} {}{}",
                    event.resource_status().map(|s| s.as_str()).unwrap_or_default(),
                    event.resource_type().unwrap_or_default(),
                    event.logical_resource_id().unwrap_or_default(),
                    if reason.is_empty() { String::new() } else { format!(" — {reason}") }
                );
            }
        }
        let status = stack_status(cfn, stack).await?;
        let Some(status) = status.as_ref().and_then(|s| s.stack_status()) else {
            bail!("the stack {stack} is gone");
        };
        let text = status.as_str();
        if !text.ends_with("IN_PROGRESS") {
            if text == format!("{operation}_COMPLETE") {
                return Ok(());
            }
            bail!(
                "the stack {stack} ended {text}: the events above say which resource failed and \
                 why"
            );
        }
        if started.elapsed() > STACK_TIMEOUT {
            bail!("the stack {stack} is still {text} after {STACK_TIMEOUT:?}; see the AWS console");
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

/// Waits until the stack has gone (DELETE) without printing events.
async fn wait(cfn: &cfn::Client, stack: &str, operation: &str) -> Result<()> {
    let started = Instant::now();
    loop {
        let Some(status) = stack_status(cfn, stack).await? else { return Ok(()) };
        let text = status.stack_status().map(|s| s.as_str().to_owned()).unwrap_or_default();
        if text == format!("{operation}_COMPLETE") {
            return Ok(());
        }
        if !text.ends_with("IN_PROGRESS") {
            bail!("the stack {stack} ended {text}: see its events in the AWS console");
        }
        if started.elapsed() > STACK_TIMEOUT {
            bail!("the stack {stack} is still {text} after {STACK_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

async fn stack_resources(cfn: &cfn::Client, stack: &str) -> Result<BTreeSet<String>> {
    let mut ids = BTreeSet::new();
    let mut token: Option<String> = None;
    loop {
        let page = cfn
            .list_stack_resources()
            .stack_name(stack)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("ListStackResources: {}", why(&e)))?;
        for r in page.stack_resource_summaries() {
            let done = r.resource_status().is_some_and(|s| s.as_str().ends_with("_COMPLETE"));
            if done {
                ids.insert(r.logical_resource_id().unwrap_or_default().to_owned());
            }
        }
        match page.next_token() {
            Some(next) => token = Some(next.to_owned()),
            None => return Ok(ids),
        }
    }
}

/// The account's AWS IoT data endpoint (ATS), or None with the reason printed.
async fn iot_endpoint(config: &SdkConfig) -> Option<String> {
    let found = aws_sdk_iot::Client::new(config)
        .describe_endpoint()
        .endpoint_type("iot:Data-ATS")
        .send()
        .await;
    match found {
        Ok(out) => out.endpoint_address().map(str::to_owned),
        Err(e) => {
            println!("    iot:DescribeEndpoint failed: {}", why(&e));
            None
        }
    }
}

/// The value of the stack's output `key`, if it has that output.
fn output_value<'a>(outputs: &'a [cfn::types::Output], key: &str) -> Option<&'a str> {
    outputs.iter().find(|o| o.output_key() == Some(key)).and_then(|o| o.output_value())
}

/// The profile from the stack's outputs and the IoT endpoint, validated as the app will. It
/// has a hosted UI only when a social identity provider is on (HostedUiProviders): the app
/// shows a button for each, and the hosted UI adds nothing to the password sign-in otherwise.
fn profile_json(
    outputs: &[cfn::types::Output],
    region: &str,
    iot_host: Option<&str>,
) -> Result<iotchat_protocol::Profile> {
    let output = |key: &str| {
        output_value(outputs, key)
            .map(str::to_owned)
            .with_context(|| format!("the stack has no {key} output"))
    };
    let iot_host = iot_host.context("no AWS IoT endpoint")?;
    let mut json = serde_json::json!({
        "region": region,
        "userPoolId": output("UserPoolId")?,
        "userPoolClientId": output("UserPoolClientId")?,
        "identityPoolId": output("IdentityPoolId")?,
        "apiUrl": output("ApiUrl")?,
        "iotEndpoint": format!("wss://{iot_host}/mqtt"),
    });
    let providers: Vec<&str> = output_value(outputs, "HostedUiProviders")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    if !providers.is_empty() {
        let redirect_uris: Vec<String> = sign_in::CALLBACK_PORTS
            .iter()
            .map(|port| iotchat_protocol::loopback_redirect_uri(*port))
            .collect();
        json["hostedUi"] = serde_json::json!({
            "url": output("HostedUiUrl")?,
            "providers": providers,
            "redirectUris": redirect_uris,
        });
    }
    iotchat_protocol::Profile::from_json(json.to_string().as_bytes())
        .context("the stack's outputs do not make a valid profile")
}

pub(crate) async fn teardown(options: &Options) -> Result<()> {
    step("Checking the AWS credentials");
    let config = sdk(options).await?;
    let region = config.region().map(ToString::to_string).unwrap_or_default();
    let account = account(&config).await?;
    println!("    account {account}, region {region}");
    let cfn = cfn::Client::new(&config);
    let stack = &options.stack;
    let existing = stack_status(&cfn, stack).await?;

    // The policy cannot be deleted while attached to identities: detach it everywhere first,
    // as the seed's teardown script did.
    let policy = existing
        .as_ref()
        .and_then(|s| s.outputs().iter().find(|o| o.output_key() == Some("IotPolicyName")).cloned())
        .and_then(|o| o.output_value().map(str::to_owned))
        .unwrap_or_else(|| format!("{stack}-user"));
    step(&format!("Detaching the IoT policy {policy} from every identity"));
    let detached = detach_everywhere(&aws_sdk_iot::Client::new(&config), &policy).await?;
    println!("    detached from {detached} identit{}", if detached == 1 { "y" } else { "ies" });

    if existing.is_some() {
        step(&format!("Deleting the stack {stack}"));
        delete_stack(&cfn, stack).await?;
        println!("    deleted");
    } else {
        println!("    there is no stack {stack}");
    }
    // Whatever outlived the stack (a stand-in may leave the policy): remove it too.
    let iot = aws_sdk_iot::Client::new(&config);
    if iot.get_policy().policy_name(&policy).send().await.is_ok() {
        println!("    the IoT policy {policy} outlived the stack: deleting it");
        iot.delete_policy()
            .policy_name(&policy)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("iot:DeletePolicy {policy}: {}", why(&e)))?;
    }

    step("Emptying and deleting the artefacts bucket");
    let s3 = s3_client(&config, options);
    let bucket = bucket_name(&account, &region, stack);
    delete_bucket(&s3, &bucket).await?;
    step("Torn down");
    Ok(())
}

/// Deletes the stack and waits; a deletion that fails (a resource that could not go yet) is
/// asked again, up to three times, as one would in the console.
async fn delete_stack(cfn: &cfn::Client, stack: &str) -> Result<()> {
    let mut last = String::new();
    for attempt in 1..=3 {
        let since = aws_smithy_types::DateTime::from(std::time::SystemTime::now());
        let outcome = match cfn.delete_stack().stack_name(stack).send().await {
            Ok(_) => match wait_reporting(cfn, stack, "DELETE", since).await {
                Ok(()) => return Ok(()),
                Err(e) if e.to_string().contains("is gone") => return Ok(()),
                Err(e) => e.to_string(),
            },
            Err(e) => format!("cloudformation:DeleteStack: {}", why(&e)),
        };
        if stack_status(cfn, stack).await?.is_none() {
            return Ok(());
        }
        println!("    attempt {attempt} failed ({outcome}); asking again");
        last = outcome;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    bail!("the stack {stack} could not be deleted: {last}")
}

async fn detach_everywhere(iot: &aws_sdk_iot::Client, policy: &str) -> Result<usize> {
    let mut count = 0;
    // Detaching changes the listing: list the first page again until it is empty.
    for _ in 0..100_000 {
        let targets = match iot.list_targets_for_policy().policy_name(policy).send().await {
            Ok(out) => out.targets().to_vec(),
            Err(e) => {
                let message = why(&e);
                if message.contains("ResourceNotFound") {
                    println!("    there is no policy {policy}");
                    return Ok(0);
                }
                bail!("iot:ListTargetsForPolicy {policy}: {message}");
            }
        };
        if targets.is_empty() {
            return Ok(count);
        }
        for target in targets {
            iot.detach_policy().policy_name(policy).target(&target).send().await.map_err(|e| {
                anyhow::anyhow!("iot:DetachPolicy {policy} from {target}: {}", why(&e))
            })?;
            count += 1;
            if count % 100 == 0 {
                println!("    … {count}");
            }
        }
    }
    bail!("the policy {policy} is still attached after 100,000 detachments")
}

async fn delete_bucket(s3: &aws_sdk_s3::Client, bucket: &str) -> Result<()> {
    if s3.head_bucket().bucket(bucket).send().await.is_err() {
        println!("    there is no bucket {bucket}");
        return Ok(());
    }
    loop {
        let listed = s3
            .list_objects_v2()
            .bucket(bucket)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("listing {bucket}: {}", why(&e)))?;
        let keys: Vec<String> =
            listed.contents().iter().filter_map(|o| o.key().map(str::to_owned)).collect();
        if keys.is_empty() {
            break;
        }
        for key in &keys {
            s3.delete_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .map_err(|e| anyhow::anyhow!("deleting {key}: {}", why(&e)))?;
        }
        println!("    deleted {} package(s)", keys.len());
    }
    s3.delete_bucket()
        .bucket(bucket)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("deleting {bucket}: {}", why(&e)))?;
    println!("    deleted {bucket}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output(key: &str, value: &str) -> cfn::types::Output {
        cfn::types::Output::builder().output_key(key).output_value(value).build()
    }

    fn outputs() -> Vec<cfn::types::Output> {
        vec![
            output("UserPoolId", "eu-west-1_AbC123xyz"),
            output("UserPoolClientId", "4k1example2client3id"),
            output("IdentityPoolId", "eu-west-1:7f86d9a8-1111-4222-8333-944444444444"),
            output("ApiUrl", "https://abc123defg.execute-api.eu-west-1.amazonaws.com/api"),
            output("IotPolicyName", "iotchat-user"),
        ]
    }

    #[test]
    fn the_stacks_outputs_make_a_profile_the_app_accepts() {
        let host = "a1b2c3example-ats.iot.eu-west-1.amazonaws.com";
        let profile = profile_json(&outputs(), "eu-west-1", Some(host)).expect("a valid profile");
        assert_eq!(profile.iot_endpoint, format!("wss://{host}/mqtt"));
        assert_eq!(profile.api_url, "https://abc123defg.execute-api.eu-west-1.amazonaws.com/api");
        assert!(!profile.is_self_hosted(), "AWS's own Cognito endpoints");
        // What the app reads back is what was printed.
        let again = iotchat_protocol::Profile::from_json(profile.to_json_pretty().as_bytes());
        assert_eq!(again.expect("reads back"), profile);

        let mut partial = outputs();
        partial.retain(|o| o.output_key() != Some("UserPoolId"));
        let error = profile_json(&partial, "eu-west-1", Some(host)).expect_err("incomplete");
        assert!(format!("{error:#}").contains("no UserPoolId output"), "{error:#}");
        let error = profile_json(&outputs(), "eu-west-1", None).expect_err("no endpoint");
        assert!(format!("{error:#}").contains("no AWS IoT endpoint"), "{error:#}");
    }

    #[test]
    fn the_profile_offers_the_hosted_ui_only_with_a_social_provider() {
        let host = "a1b2c3example-ats.iot.eu-west-1.amazonaws.com";
        let url = "https://iotchat-0123456789ab.auth.eu-west-1.amazoncognito.com";
        let uris = [
            "http://localhost:28787/callback",
            "http://localhost:28788/callback",
            "http://localhost:28789/callback",
        ];

        // No provider on: the stack has the domain but no HostedUiProviders output.
        let mut none = outputs();
        none.push(output("HostedUiUrl", url));
        let profile = profile_json(&none, "eu-west-1", Some(host)).expect("a valid profile");
        assert_eq!(profile.hosted_ui, None, "no buttons to show");

        for (listed, expected) in [
            ("Google", vec!["Google"]),
            ("Facebook", vec!["Facebook"]),
            ("Google,Facebook", vec!["Google", "Facebook"]),
        ] {
            let mut some = none.clone();
            some.push(output("HostedUiProviders", listed));
            let profile = profile_json(&some, "eu-west-1", Some(host)).expect("a valid profile");
            let hosted = profile.hosted_ui.clone().expect("a hosted UI");
            assert_eq!(hosted.url, url);
            assert_eq!(hosted.providers, expected);
            assert_eq!(hosted.redirect_uris, uris);
            assert_eq!(hosted.redirect_ports(), sign_in::CALLBACK_PORTS);
            let again = iotchat_protocol::Profile::from_json(profile.to_json_pretty().as_bytes());
            assert_eq!(again.expect("reads back"), profile);
        }

        // Providers without the URL cannot make a hosted UI: said, not left out quietly.
        let mut partial = outputs();
        partial.push(output("HostedUiProviders", "Google"));
        let error = profile_json(&partial, "eu-west-1", Some(host)).expect_err("no URL");
        assert!(format!("{error:#}").contains("no HostedUiUrl output"), "{error:#}");
    }

    /// The template itself: what the profile and the deploy take for granted.
    #[test]
    fn the_template_matches_the_profile_the_parameters_and_the_stand_in() {
        let full = template::from_yaml(include_str!("../template.yaml")).expect("the template");
        let client = &full["Resources"]["UserPoolClient"]["Properties"];
        let uris: Vec<String> = sign_in::CALLBACK_PORTS
            .iter()
            .map(|port| iotchat_protocol::loopback_redirect_uri(*port))
            .collect();
        assert_eq!(client["CallbackURLs"], serde_json::json!(uris), "the registered redirect URIs");
        assert_eq!(client["AllowedOAuthFlows"], serde_json::json!(["code"]));
        let scopes = client["AllowedOAuthScopes"].to_string();
        assert!(scopes.contains("openid") && scopes.contains("aws.cognito.signin.user.admin"));

        let parameters = &full["Parameters"];
        for provider in &sign_in::PROVIDERS {
            assert_eq!(parameters[provider.id.parameter]["Default"], "", "{}", provider.name);
            assert_eq!(parameters[provider.secret.parameter]["Default"], "", "{}", provider.name);
            assert_eq!(parameters[provider.secret.parameter]["NoEcho"], true, "{}", provider.name);
            let idp = &full["Resources"][format!("{}IdentityProvider", provider.name)];
            assert_eq!(idp["Properties"]["ProviderName"], provider.name);
        }
        assert_eq!(parameters[sign_in::DOMAIN_PREFIX.parameter]["Default"], "");

        // A stand-in creates no Cognito resource: the outputs that need one go as well.
        let (standin, _) = template::without(&full, STAND_IN_SKIPS);
        for gone in ["UserPoolId", "HostedUiUrl", "HostedUiProviders"] {
            assert!(standin["Outputs"].get(gone).is_none(), "{gone}");
        }
        assert!(standin["Outputs"].get("UsersTableName").is_some());
    }

    #[test]
    fn the_artefacts_bucket_name_is_valid_for_s3() {
        let name = bucket_name(
            "123456789012",
            "ap-southeast-2",
            "A-Very-Long-Stack-Name-Of-Forty-Chars-X",
        );
        assert!(name.len() <= 63 && name.len() >= 3, "{name}");
        assert!(name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
        assert!(!name.ends_with('-'));
        assert_eq!(bucket_name("1", "us-east-1", "chat"), "chat-artifacts-1-us-east-1");
    }
}
