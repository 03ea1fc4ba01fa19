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

/// `iotchat login --provider test`: the CLI prints the sign-in address, the browser (played
/// here) signs in at the test provider, and the session outlives the CLI and the server.
#[tokio::test(flavor = "multi_thread")]
async fn the_cli_signs_in_through_the_test_provider() {
    use tokio::io::AsyncBufReadExt as _;

    let mut server = TestServer::start().await;
    let cli = iotchat_tests::cli_binary().expect("the iotchat binary");
    let work = tempfile::tempdir().unwrap();
    let service = keychain_service();
    let profile = server.data_dir().join("profile.json");
    let iotchat = |args: &[&str]| {
        let mut command = tokio::process::Command::new(&cli);
        command
            .args(["--data-dir"])
            .arg(work.path())
            .args(args)
            .env("IOTCHAT_PROFILE", &profile)
            .env("IOTCHAT_KEYCHAIN_SERVICE", &service)
            .kill_on_drop(true);
        command
    };
    let mut login = iotchat(&["login", "--provider", "test", "--no-browser"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("iotchat runs");
    let mut stderr = tokio::io::BufReader::new(login.stderr.take().expect("stderr")).lines();
    let url = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while let Some(line) = stderr.next_line().await.expect("stderr") {
            if line.starts_with("http") {
                return line;
            }
        }
        panic!("the CLI ended without printing the sign-in address");
    })
    .await
    .expect("the address within 30 s");
    let page = iotchat_tests::browser::play_browser(
        &url,
        iotchat_tests::browser::Act::Allow { subject: "carol".into() },
    )
    .await
    .expect("the browser's part");
    assert!(page.contains("return to IoT Chat"), "{page}");
    let output = tokio::time::timeout(std::time::Duration::from_secs(30), login.wait_with_output())
        .await
        .expect("the CLI ends")
        .expect("its output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("Logged in as TestIdP_carol"), "{stdout}");

    let whoami = |label: &'static str| {
        let output = iotchat(&["whoami"]).output();
        async move {
            let output = output.await.expect("iotchat whoami");
            let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(output.status.success(), "{label}: {stdout}{stderr}");
            stdout
        }
    };
    assert!(whoami("after login").await.starts_with("TestIdP_carol ("));
    server.restart().await;
    assert!(whoami("after a server restart").await.starts_with("TestIdP_carol ("));

    // A provider the server does not offer is named, with what it does offer.
    let output = iotchat(&["login", "--provider", "google", "--no-browser"])
        .output()
        .await
        .expect("iotchat runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("does not sign in with \"google\": it offers TestIdP"), "{stderr}");
}
