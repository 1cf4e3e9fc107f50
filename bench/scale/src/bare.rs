//! The bare handler: axum answering one fixed JSON body on every path, with nothing else
//! (no authentication, database or middleware). Prints `listening on URL` like the server.

use axum::body::Body;
use axum::http::header::CONTENT_TYPE;

/// Serves `body` on 127.0.0.1 (a free port) until killed.
pub async fn serve(body: Vec<u8>) -> anyhow::Result<()> {
    let body: &'static [u8] = Box::leak(body.into_boxed_slice());
    let app = axum::Router::new()
        .fallback(move || async move { ([(CONTENT_TYPE, "application/json")], Body::from(body)) });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("listening on http://{}", listener.local_addr()?);
    // Nagle's algorithm off, as the server has it.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await?;
    Ok(())
}
