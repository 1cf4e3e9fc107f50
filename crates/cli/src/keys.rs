//! `pictograph keys …`: key administration straight against the data directory.

use crate::DataArgs;
use anyhow::Context;
use clap::Subcommand;
use pictograph_server::auth::{create_first_key, create_key, Role, TIERS};
use pictograph_server::store::Store;
use pictograph_server::Config;

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Create a key; prints it once on standard output.
    Create {
        #[command(flatten)]
        data: DataArgs,
        /// Organisation (created when missing).
        #[arg(long, default_value = "default")]
        org: String,
        /// member, admin or owner.
        #[arg(long, default_value = "member")]
        role: String,
        /// free, core, pro, enterprise or unlimited.
        #[arg(long, default_value = "free")]
        tier: String,
    },
    /// List keys (never the secrets).
    List {
        #[command(flatten)]
        data: DataArgs,
    },
    /// Revoke a key by id or by the prefix shown in `keys list`.
    Revoke {
        #[command(flatten)]
        data: DataArgs,
        /// Key id or prefix.
        key: String,
    },
}

async fn open(data: &DataArgs) -> anyhow::Result<Store> {
    let config = data.config();
    open_store(&config).await
}

/// The store of `config`, its data directory made first when missing.
async fn open_store(config: &Config) -> anyhow::Result<Store> {
    pictograph_server::create_private_dir(&config.data_dir)
        .with_context(|| format!("creating data dir {}", config.data_dir.display()))?;
    Store::connect(&config.database_url())
        .await
        .context("opening the metadata store")
}

/// On the first start of an empty store: creates organisation `default` and an owner key.
pub async fn first_start(config: &Config) -> anyhow::Result<Option<String>> {
    let store = open_store(config).await?;
    Ok(create_first_key(&store, "default", Role::Owner, "unlimited").await?)
}

pub async fn run(cmd: KeysCommand) -> anyhow::Result<()> {
    match cmd {
        KeysCommand::Create {
            data,
            org,
            role,
            tier,
        } => {
            let Some(role) = Role::parse(&role) else {
                anyhow::bail!("unknown role '{role}': use member, admin or owner");
            };
            if !TIERS.contains(&tier.as_str()) {
                anyhow::bail!("unknown tier '{tier}': use {}", TIERS.join(", "));
            }
            if org.trim().is_empty() {
                anyhow::bail!("--org must not be blank");
            }
            let store = open(&data).await?;
            println!("{}", create_key(&store, &org, role, &tier).await?);
        }
        KeysCommand::List { data } => {
            let store = open(&data).await?;
            println!(
                "{:<38} {:<16} {:<16} {:<7} {:<11} {:<28} status",
                "id", "prefix", "org", "role", "tier", "created"
            );
            for k in store.list_keys().await? {
                let status = if k.revoked_at.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                println!(
                    "{:<38} {:<16} {:<16} {:<7} {:<11} {:<28} {status}",
                    k.id, k.prefix, k.org_name, k.role, k.tier, k.created_at
                );
            }
        }
        KeysCommand::Revoke { data, key } => {
            let store = open(&data).await?;
            if !store.revoke_key(&key).await? {
                anyhow::bail!("no active key with id or prefix '{key}'");
            }
            println!("revoked {key}");
        }
    }
    Ok(())
}
