//! Starting a real origin for a test: the same `Application::build` as `main`, on a free port,
//! over its own temporary SQLite file.

use std::io;
use std::path::{Path, PathBuf};

use breakwater_origin::{Application, Db, Settings};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The admin token every test origin is started with, unless a test asks for none.
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

/// A running origin and what a test needs to talk to it and stop it.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    /// The origin's own pool, to look underneath the API or to break the database.
    pub db: Db,
    /// The directory holding the database file; kept alive as long as the app.
    pub dir: Option<TempDir>,
    pub database_file: PathBuf,
    shutdown: Option<oneshot::Sender<()>>,
    server: JoinHandle<io::Result<()>>,
}

/// An origin over a fresh database in a new temporary directory, admin writes enabled with
/// [`ADMIN_TOKEN`].
pub async fn spawn_app() -> TestApp {
    spawn_app_with_admin_token(Some(ADMIN_TOKEN)).await
}

/// Like [`spawn_app`], with this admin token (`None`: admin writes disabled).
pub async fn spawn_app_with_admin_token(admin_token: Option<&str>) -> TestApp {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut app = start(dir.path(), admin_token).await;
    app.dir = Some(dir);
    app
}

/// An origin over `dir/origin.sqlite`, which may already exist (to test restarts).
pub async fn spawn_app_in(dir: &Path) -> TestApp {
    start(dir, Some(ADMIN_TOKEN)).await
}

async fn start(dir: &Path, admin_token: Option<&str>) -> TestApp {
    let database_file = dir.join("origin.sqlite");
    let settings = Settings {
        admin_token: admin_token.map(str::to_owned),
        ..Settings::new(
            "127.0.0.1:0".parse().unwrap(),
            format!("sqlite://{}", database_file.display()),
        )
    };
    let app = Application::build(settings).await.expect("origin builds");
    let address = format!("http://{}", app.local_addr());
    let db = app.db().clone();
    let (trigger, triggered) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        // A dropped sender also means "stop", so a failing test never leaks a server.
        let _ = triggered.await;
    }));
    TestApp {
        address,
        client: reqwest::Client::new(),
        db,
        dir: None,
        database_file,
        shutdown: Some(trigger),
        server,
    }
}

impl TestApp {
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("request reaches the origin")
    }

    /// A `GET` with extra header fields.
    pub async fn get_with(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let mut request = self.client.get(format!("{}{path}", self.address));
        for (name, value) in fields {
            request = request.header(*name, *value);
        }
        request.send().await.expect("request reaches the origin")
    }

    /// A `PUT` of `body` as JSON with the admin token; add to it or send it as is.
    pub fn admin_put(&self, path: &str, body: &serde_json::Value) -> reqwest::RequestBuilder {
        self.client
            .put(format!("{}{path}", self.address))
            .bearer_auth(ADMIN_TOKEN)
            .json(body)
    }

    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        let response = self.get(path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.expect("a JSON body")
    }

    /// Triggers graceful shutdown and returns what `run_until` returned.
    pub async fn stop(mut self) -> io::Result<()> {
        if let Some(trigger) = self.shutdown.take() {
            let _ = trigger.send(());
        }
        (&mut self.server).await.expect("server task did not panic")
    }
}

/// Asserts `response` is an RFC 9457 problem with `status`, and returns its body.
pub async fn assert_problem(response: reqwest::Response, status: u16) -> serde_json::Value {
    assert_eq!(response.status(), status, "{}", response.url());
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: serde_json::Value = response.json().await.expect("a JSON problem body");
    assert_eq!(body["status"], status);
    assert!(
        body["type"].as_str().unwrap().starts_with("https://"),
        "{body}"
    );
    assert!(body["title"].is_string(), "{body}");
    body
}
