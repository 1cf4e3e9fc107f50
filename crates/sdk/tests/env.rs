//! Configuration from `PICTOGRAPH_*` variables. One test only: the environment is
//! process-wide, so nothing else in this binary may read it concurrently.

mod common;

use pictograph::{Client, Error};

#[tokio::test]
async fn environment_configures_the_client_and_the_builder_wins() {
    for k in [
        "PICTOGRAPH_API_KEY",
        "PICTOGRAPH_BASE_URL",
        "PICTOGRAPH_TIMEOUT",
        "PICTOGRAPH_MAX_RETRIES",
    ] {
        std::env::remove_var(k);
    }
    assert!(matches!(Client::from_env(), Err(Error::Config(_))));
    assert!(matches!(Client::new("   "), Err(Error::Config(_))));
    let c = Client::new("k").unwrap();
    assert_eq!(c.base_url(), pictograph::DEFAULT_BASE_URL);

    let s = common::start().await;
    std::env::set_var("PICTOGRAPH_API_KEY", format!("  {}  ", s.key));
    std::env::set_var("PICTOGRAPH_BASE_URL", format!("{}/", s.base_url()));
    std::env::set_var("PICTOGRAPH_TIMEOUT", "12.5");
    std::env::set_var("PICTOGRAPH_MAX_RETRIES", "0");
    let c = Client::from_env().unwrap();
    assert_eq!(c.base_url(), s.base_url(), "the trailing slash is stripped");
    assert!(c.datasets().list(5).await.unwrap().is_empty());

    // An explicit key beats the environment's.
    let wrong = Client::new("pk_live_wrong").unwrap();
    assert!(matches!(
        wrong.datasets().list(5).await,
        Err(Error::Auth(_))
    ));

    std::env::set_var("PICTOGRAPH_MAX_RETRIES", "many");
    assert!(matches!(Client::from_env(), Err(Error::Config(_))));
    std::env::set_var("PICTOGRAPH_MAX_RETRIES", "2");
    std::env::set_var("PICTOGRAPH_TIMEOUT", "-1");
    assert!(matches!(Client::from_env(), Err(Error::Config(_))));
    std::env::remove_var("PICTOGRAPH_TIMEOUT");

    assert!(matches!(
        Client::builder("k").base_url("ftp://x").build(),
        Err(Error::Config(_))
    ));
    assert!(matches!(
        Client::builder("k").base_url("not a url").build(),
        Err(Error::Config(_))
    ));
    #[cfg(feature = "rustls")]
    assert_eq!(
        Client::builder("k")
            .base_url("https://api.pictograph.io/")
            .build()
            .unwrap()
            .base_url(),
        "https://api.pictograph.io"
    );
    #[cfg(not(feature = "rustls"))]
    assert!(matches!(
        Client::builder("k").base_url("https://api.pictograph.io").build(),
        Err(Error::Config(m)) if m.contains("rustls")
    ));
    for k in [
        "PICTOGRAPH_API_KEY",
        "PICTOGRAPH_BASE_URL",
        "PICTOGRAPH_MAX_RETRIES",
    ] {
        std::env::remove_var(k);
    }
}
