//! TLS and client certificates over real sockets, with certificates made
//! in the test: with TLS configured plain HTTP gets no answer, the API and
//! the CLI work over HTTPS with the test's CA, a client certificate mapped
//! to a namespace acts there (and only there) without a token, and an
//! unmapped, revoked or foreign certificate is refused.

use crate::support::{Server, run_cli};
use crate::tenancy::{ADMIN, call, call_put, issue};
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose,
    SanType,
};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A CA and the certificates it signs, written as PEM files.
struct Pki {
    dir: tempfile::TempDir,
    ca: Certificate,
    ca_key: KeyPair,
}

impl Pki {
    fn new(name: &str) -> Pki {
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_key = KeyPair::generate().unwrap();
        let ca = params.self_signed(&ca_key).unwrap();
        let pki = Pki {
            dir: tempfile::tempdir().unwrap(),
            ca,
            ca_key,
        };
        std::fs::write(pki.path("ca.pem"), pki.ca.pem()).unwrap();
        pki
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    /// A certificate for `common_name` (and, for a server, 127.0.0.1),
    /// signed by the CA: `NAME.pem` and `NAME.key`.
    fn issue(&self, common_name: &str, server: bool) -> (PathBuf, PathBuf) {
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        if server {
            params.subject_alt_names = vec![
                SanType::IpAddress("127.0.0.1".parse().unwrap()),
                SanType::DnsName("localhost".try_into().unwrap()),
            ];
        }
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca, &self.ca_key).unwrap();
        let (cert_path, key_path) = (
            self.path(&format!("{common_name}.pem")),
            self.path(&format!("{common_name}.key")),
        );
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        (cert_path, key_path)
    }

    /// An HTTPS client trusting this CA, presenting `identity` if given.
    fn client(&self, identity: Option<(&Path, &Path)>) -> reqwest::Client {
        let ca = std::fs::read(self.path("ca.pem")).unwrap();
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(Duration::from_secs(60))
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap());
        if let Some((cert, key)) = identity {
            let mut pem = std::fs::read(cert).unwrap();
            pem.extend(std::fs::read(key).unwrap());
            builder = builder.identity(reqwest::Identity::from_pem(&pem).unwrap());
        }
        builder.build().unwrap()
    }
}

/// A TLS server trusting `pki`'s client certificates.
fn tls_server(pki: &Pki) -> Server {
    let (cert, key) = pki.issue("weft-server", true);
    let ca = pki.path("ca.pem");
    let args = [
        "--admin-token",
        ADMIN,
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
        "--tls-client-ca",
        ca.to_str().unwrap(),
    ];
    Server::start_tls(&args, pki.client(None))
}

async fn get(client: &reqwest::Client, url: String) -> Result<(u16, Value), reqwest::Error> {
    let resp = client.get(url).send().await?;
    let status = resp.status().as_u16();
    Ok((status, resp.json().await.unwrap_or(Value::Null)))
}

/// `weft ARGS` against the server with `token` in WEFT_TOKEN and `env`
/// set; (success, stdout, stderr).
fn cli(
    server: &Server,
    args: &[&str],
    token: Option<&str>,
    env: &[(&str, &Path)],
) -> (bool, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_weft"));
    cmd.args(args)
        .env("WEFT_SERVER", server.url(""))
        .env_remove("WEFT_TOKEN")
        .env_remove("WEFT_CA_CERT")
        .env_remove("WEFT_CLIENT_CERT")
        .env_remove("WEFT_CLIENT_KEY");
    if let Some(token) = token {
        cmd.env("WEFT_TOKEN", token);
    }
    for (var, path) in env {
        cmd.env(var, path);
    }
    run_cli(&mut cmd)
}

#[tokio::test(flavor = "multi_thread")]
async fn https_only_and_the_cli_over_tls() {
    let pki = Pki::new("weft test CA");
    let server = tls_server(&pki);
    assert!(server.url("").starts_with("https://"));

    // Plain HTTP to the TLS port gets no HTTP answer.
    let plain = reqwest::Client::new()
        .get(format!("http://{}/healthz", server.addr))
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP was answered: {plain:?}");
    // A client that does not trust the test's CA refuses the server.
    let untrusting = reqwest::Client::builder().use_rustls_tls().build().unwrap();
    let refused = get(&untrusting, server.url("/healthz")).await;
    assert!(refused.is_err(), "an unknown CA was trusted: {refused:?}");

    // Over HTTPS the API works as usual: no token, 401; the admin's, 200.
    let (status, _) = call(&server, "GET", "/v1/runs", None, None).await;
    assert_eq!(status, 401);
    let (status, body) = call(&server, "GET", "/v1/runs", Some(ADMIN), None).await;
    assert_eq!(status, 200, "{body}");

    // The CLI over TLS with the test's CA; without it, a clear refusal.
    let ca = pki.path("ca.pem");
    let (ok, out, err) = cli(
        &server,
        &["namespace", "create", "team-a"],
        Some(ADMIN),
        &[("WEFT_CA_CERT", &ca)],
    );
    assert!(ok, "{out}{err}");
    let (ok, out, err) = cli(
        &server,
        &["namespace", "list"],
        Some(ADMIN),
        &[("WEFT_CA_CERT", &ca)],
    );
    assert!(ok && out.contains("team-a"), "{out}{err}");
    let (ok, _, err) = cli(&server, &["namespace", "list"], Some(ADMIN), &[]);
    assert!(!ok, "the CLI trusted an unknown CA");
    assert!(err.contains("cannot reach weft"), "{err}");
    let missing = pki.path("nope.pem");
    let (ok, _, err) = cli(
        &server,
        &["namespace", "list"],
        Some(ADMIN),
        &[("WEFT_CA_CERT", &missing)],
    );
    assert!(!ok && err.contains("nope.pem"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn client_certificates_mapped_to_a_namespace() {
    let pki = Pki::new("weft test CA");
    let server = tls_server(&pki);
    let ca = pki.path("ca.pem");
    let (status, body) = call_put(&server, "/v1/components/entity", "entity", ADMIN).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = call(
        &server,
        "POST",
        "/v1/namespaces",
        Some(ADMIN),
        Some(json!({ "name": "other" })),
    )
    .await;
    assert_eq!(status, 201, "{body}");

    // The cluster admin maps CN=rollout-bot to `operate` in `default`.
    let (ok, out, err) = cli(
        &server,
        &[
            "token",
            "create",
            "--namespace",
            "default",
            "--role",
            "operate",
            "--client-cert",
            "rollout-bot",
        ],
        Some(ADMIN),
        &[("WEFT_CA_CERT", &ca)],
    );
    assert!(ok && out.contains("rollout-bot"), "{out}{err}");
    let credential = out.split(':').next().unwrap().trim().to_string();
    // Only the cluster admin maps certificates.
    let namespace_admin = issue(&server, "default", "admin").await;
    let (status, body) = call(
        &server,
        "POST",
        "/v1/namespaces/default/tokens",
        Some(&namespace_admin),
        Some(json!({ "role": "admin", "client_cert": "mine" })),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    // One mapping per common name.
    let (status, body) = call(
        &server,
        "POST",
        "/v1/namespaces/other/tokens",
        Some(ADMIN),
        Some(json!({ "role": "read", "client_cert": "rollout-bot" })),
    )
    .await;
    assert_eq!(status, 409, "{body}");

    // The mapped certificate starts a run in `default` without a token...
    let (cert, key) = pki.issue("rollout-bot", false);
    let bot = pki.client(Some((&cert, &key)));
    let resp = bot
        .post(server.url("/v1/runs"))
        .json(&json!({ "workflow": "entity", "input": { "expect": 1 } }))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(status, 201, "{body}");
    let run_id = body["run_id"].as_str().unwrap();
    let (status, run) = get(&bot, server.url(&format!("/v1/runs/{run_id}")))
        .await
        .unwrap();
    assert_eq!((status, run["namespace"].as_str()), (200, Some("default")));
    // ...but cannot deploy (operate is not deploy), nor read `other`.
    let resp = bot
        .put(server.url("/v1/components/x"))
        .body(b"\0asm".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    let (status, body) = get(&bot, server.url("/v1/runs?namespace=other"))
        .await
        .unwrap();
    assert_eq!(status, 403, "{body}");
    // Its use shows in the token list, with the name it stands for.
    let (ok, out, err) = cli(
        &server,
        &["token", "list", "--namespace", "default"],
        Some(ADMIN),
        &[("WEFT_CA_CERT", &ca)],
    );
    assert!(
        ok && out.contains("[client cert rollout-bot]"),
        "{out}{err}"
    );

    // The CLI presents a client certificate too.
    let (ok, out, err) = cli(
        &server,
        &["runs", "--namespace", "default"],
        None,
        &[
            ("WEFT_CA_CERT", &ca),
            ("WEFT_CLIENT_CERT", &cert),
            ("WEFT_CLIENT_KEY", &key),
        ],
    );
    assert!(ok && out.contains(run_id), "{out}{err}");

    // A certificate of the same CA that nobody mapped: 401, naming it.
    let (cert, key) = pki.issue("stranger", false);
    let (status, body) = get(&pki.client(Some((&cert, &key))), server.url("/v1/runs"))
        .await
        .unwrap();
    assert_eq!(status, 401, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`stranger` is not mapped"),
        "{body}"
    );
    // A certificate of another CA does not get through the handshake,
    // even with a mapped name.
    let rogue = Pki::new("rogue CA");
    let (cert, key) = rogue.issue("rollout-bot", false);
    let mut pem = std::fs::read(&cert).unwrap();
    pem.extend(std::fs::read(&key).unwrap());
    let impostor = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(&ca).unwrap()).unwrap())
        .identity(reqwest::Identity::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    let refused = get(&impostor, server.url("/v1/runs")).await;
    assert!(
        refused.is_err(),
        "a foreign certificate got in: {refused:?}"
    );

    // Revoked: refused from the next request on.
    let (status, body) = call(
        &server,
        "DELETE",
        &format!("/v1/namespaces/default/tokens/{credential}"),
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = get(&bot, server.url("/v1/runs")).await.unwrap();
    assert_eq!(status, 401);
}

#[test]
fn client_certificates_need_an_admin_token() {
    let pki = Pki::new("weft test CA");
    let (cert, key) = pki.issue("weft-server", true);
    let out = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(["serve", "--addr", "127.0.0.1:0", "--db"])
        .arg(pki.path("w.db"))
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .arg("--tls-client-ca")
        .arg(pki.path("ca.pem"))
        .env_remove("WEFT_ADMIN_TOKEN")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("--tls-client-ca needs an admin token"),
        "{stderr}"
    );
    // A key that is not the certificate's is refused at start, plainly.
    let (_, other_key) = pki.issue("someone-else", false);
    let out = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(["serve", "--addr", "127.0.0.1:0", "--db"])
        .arg(pki.path("w.db"))
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&other_key)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("do not make a pair"), "{stderr}");
}
