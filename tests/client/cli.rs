//! The `iotchat` CLI through a whole journey, driven by a shell script as a new user would.

use crate::support::{PASSWORD, TestServer, keychain_service};

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_does_the_whole_journey_in_a_shell_script() {
    let server = TestServer::start().await;
    let cli = iotchat_tests::cli_binary().expect("the iotchat binary");
    let work = tempfile::tempdir().unwrap();
    let script = iotchat_tests::manifest_dir().join("client").join("cli_journey.sh");
    let output = tokio::process::Command::new("bash")
        .arg(&script)
        .env("IOTCHAT", &cli)
        .env("IOTCHAT_PROFILE", server.data_dir().join("profile.json"))
        .env("IOTCHAT_KEYCHAIN_SERVICE", keychain_service())
        .env("ALICE_DIR", work.path().join("alice"))
        .env("BOB_DIR", work.path().join("bob"))
        .env("WORK", work.path())
        .env("PASSWORD", PASSWORD)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(std::time::Duration::from_secs(120), output)
        .await
        .expect("the journey ends within two minutes")
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the journey failed\nstdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("journey complete"), "{stdout}");
}
