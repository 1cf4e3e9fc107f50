//! `pictograph login` and `pictograph logout`: the saved key and server.

use super::{config, finish, print_json, usage, CliError, CliResult, ClientArgs};
use pictograph::Client;
use serde_json::json;
use std::io::{BufRead, IsTerminal};

/// Arguments of `pictograph login`.
#[derive(clap::Args, Debug)]
pub struct LoginArgs {
    #[command(flatten)]
    conn: ClientArgs,
    /// Save without checking the key against the server first.
    #[arg(long)]
    no_verify: bool,
}

/// Arguments of `pictograph logout`.
#[derive(clap::Args, Debug)]
pub struct LogoutArgs {
    /// Print one JSON document on standard output.
    #[arg(long)]
    json: bool,
}

/// The key: `--api-key`, else one line of standard input (asked for, unechoed, on a
/// terminal).
fn read_key(args: &ClientArgs) -> CliResult<String> {
    if let Some(k) = args
        .api_key
        .as_deref()
        .map(str::trim)
        .filter(|k| !k.is_empty())
    {
        return Ok(k.to_string());
    }
    let key = if std::io::stdin().is_terminal() {
        let term = console::Term::stderr();
        term.write_str("API key: ")
            .and_then(|()| term.read_secure_line())
            .map_err(|e| CliError::Usage(format!("reading the API key: {e}")))?
    } else {
        read_line().map_err(|e| CliError::Usage(format!("reading the API key: {e}")))?
    };
    let key = key.trim().to_string();
    if key.is_empty() {
        return usage("no API key: pass --api-key or type it (or pipe it) on standard input");
    }
    Ok(key)
}

fn read_line() -> std::io::Result<String> {
    let mut s = String::new();
    std::io::stdin().lock().read_line(&mut s)?;
    Ok(s)
}

/// Runs `pictograph login`.
pub async fn run(args: LoginArgs) -> anyhow::Result<()> {
    let json = args.conn.json;
    finish(json, login(args).await)
}

async fn login(args: LoginArgs) -> CliResult {
    let json = args.conn.json;
    let path = config::file()?;
    // A broken file is replaced, not an obstacle.
    let saved = config::load(&path).unwrap_or_default();
    let base_url = [
        args.conn.base_url.clone(),
        std::env::var("PICTOGRAPH_BASE_URL").ok(),
        saved.base_url,
    ]
    .into_iter()
    .flatten()
    .map(|u| u.trim().to_string())
    .find(|u| !u.is_empty())
    .unwrap_or_else(|| pictograph::DEFAULT_BASE_URL.to_string());
    let key = read_key(&args.conn)?;
    let client = Client::builder(key.clone()).base_url(base_url).build()?;
    let base_url = client.base_url().to_string();
    let verified = if args.no_verify {
        false
    } else {
        // A cheap authenticated call: the 401 of a bad key stops here, nothing is saved.
        client.datasets().list(1).await.map_err(|e| {
            if e.status() == Some(401) {
                CliError::Hinted(
                    Box::new(e),
                    "the key was not saved: check it, or pass --no-verify to save it unchecked",
                )
            } else if e.status().is_none() {
                // Nobody answered (or not as an API does): the key was not checked either.
                CliError::Hinted(
                    Box::new(e),
                    "the key was not saved: check --base-url, or pass --no-verify to save it \
                     unchecked",
                )
            } else {
                CliError::Api(e)
            }
        })?;
        true
    };
    let replaced = saved.api_key.is_some();
    config::save(
        &path,
        &config::Credentials {
            api_key: Some(key),
            base_url: Some(base_url.clone()),
        },
    )?;
    if json {
        print_json(&json!({
            "base_url": base_url,
            "config_file": path,
            "verified": verified,
            "replaced": replaced,
        }));
    } else {
        let how = if verified {
            "key verified"
        } else {
            "key not verified"
        };
        println!(
            "Logged in to {base_url} ({how}); saved to {}",
            path.display()
        );
    }
    Ok(())
}

/// Runs `pictograph logout`: removes the saved key.
pub async fn run_logout(args: LogoutArgs) -> anyhow::Result<()> {
    finish(args.json, logout(&args))
}

fn logout(args: &LogoutArgs) -> CliResult {
    let path = config::file()?;
    let removed = match std::fs::remove_file(&path) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => {
            return Err(anyhow::Error::new(e)
                .context(format!("removing {}", path.display()))
                .into())
        }
    };
    if args.json {
        print_json(&json!({"removed": removed, "config_file": path}));
    } else if removed {
        println!("Removed {}", path.display());
    } else {
        println!("Not logged in (no {})", path.display());
    }
    Ok(())
}
