//! `moqt token generate|sign|verify`: keys and tokens compatible with moq-dev's `moq-token` (the
//! same JWK files, the same token shape, the same flags where they overlap). The work is done by
//! moqt-auth; this module reads flags and files and prints.

use std::io::Read;
use std::path::{Path as FsPath, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use moqt_auth::claims::UnknownClaims;
use moqt_auth::jwk::Algorithm;
use moqt_auth::{Claims, Key, KeyDir, KeySet, Scope, Verifier};
use moqt_proto::access::{Pattern, Patterns};
use moqt_proto::Path;

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Generate a key; written as base64url-encoded JSON (a random key ID unless --id).
    Generate(GenerateArgs),
    /// Sign a token and print it.
    Sign(SignArgs),
    /// Verify a token and print its claims (and, with --path, the access it gives there).
    Verify(VerifyArgs),
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// HS256, HS384, HS512, ES256, ES384, RS256, RS384, RS512, PS256, PS384, PS512 or EdDSA.
    #[arg(long, default_value = "HS256", value_parser = parse_algorithm)]
    algorithm: Algorithm,
    /// The key ID [default: 16 random hex digits].
    #[arg(long)]
    id: Option<String>,
    /// Write the key to this file (`-`: stdout) [default: stdout].
    #[arg(long, conflicts_with = "out_dir")]
    out: Option<PathBuf>,
    /// Write the key to this directory as {kid}.jwk.
    #[arg(long)]
    out_dir: Option<PathBuf>,
    /// Write the public key to this file (`-`: stdout); asymmetric algorithms only.
    #[arg(long, conflicts_with = "public_dir")]
    public: Option<PathBuf>,
    /// Write the public key to this directory as {kid}.jwk; asymmetric algorithms only.
    #[arg(long)]
    public_dir: Option<PathBuf>,
    /// Key scope: the root for --publish/--subscribe (only with one of them).
    #[arg(long, default_value = "")]
    root: String,
    /// Key scope: a prefix tokens of this key may grant to publish (repeatable).
    #[arg(long)]
    publish: Vec<String>,
    /// Key scope: a prefix tokens of this key may grant to subscribe (repeatable).
    #[arg(long)]
    subscribe: Vec<String>,
}

#[derive(Debug, Args)]
pub struct SignArgs {
    /// The signing key file (`-`: stdin).
    #[arg(long)]
    key: PathBuf,
    /// The root the grants are relative to.
    #[arg(long, default_value = "")]
    root: String,
    /// A prefix the holder may publish below (`""`: everything under the root); repeatable.
    #[arg(long)]
    publish: Vec<String>,
    /// A prefix the holder may subscribe below (`""`: everything under the root); repeatable.
    #[arg(long)]
    subscribe: Vec<String>,
    /// A pattern the holder may publish (`foo`, `foo/**`, `*/cam`); repeatable.
    #[arg(long)]
    publish_pattern: Vec<String>,
    /// A pattern the holder may subscribe to; repeatable.
    #[arg(long)]
    subscribe_pattern: Vec<String>,
    /// Expiry as a unix timestamp.
    #[arg(long, conflicts_with = "valid_for")]
    expires: Option<i64>,
    /// Expiry this many seconds from now (also sets the issue time to now).
    #[arg(long)]
    valid_for: Option<u64>,
    /// Issue time as a unix timestamp.
    #[arg(long)]
    issued: Option<i64>,
    /// Not valid before this unix timestamp.
    #[arg(long)]
    not_before: Option<i64>,
    /// Add moq-token 0.5's `cluster: true` claim (a relay peer).
    #[arg(long)]
    cluster: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The key file (`-`: stdin, then --in must be a file).
    #[arg(long, required_unless_present = "key_dir", conflicts_with = "key_dir")]
    key: Option<PathBuf>,
    /// A directory of {kid}.jwk keys; the token's kid picks one.
    #[arg(long)]
    key_dir: Option<PathBuf>,
    /// The token file (`-`: stdin).
    #[arg(long = "in", default_value = "-")]
    token: PathBuf,
    /// Also show the access the token gives a session connected at this path.
    #[arg(long)]
    path: Option<String>,
    /// Seconds of clock leeway on exp and nbf.
    #[arg(long, default_value_t = moqt_auth::verify::DEFAULT_LEEWAY)]
    leeway: u64,
    /// Ignore claims moqt does not know (as moq-token does) instead of refusing them.
    #[arg(long)]
    ignore_unknown_claims: bool,
    /// Check as of this unix time instead of now.
    #[arg(long)]
    now: Option<u64>,
}

fn parse_algorithm(s: &str) -> Result<Algorithm, String> {
    s.parse::<Algorithm>().map_err(|e| e.to_string())
}

fn is_dash(p: &FsPath) -> bool {
    p == FsPath::new("-")
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn read_input(path: &FsPath, what: &str) -> Result<String> {
    let mut text = String::new();
    if is_dash(path) {
        std::io::stdin().read_to_string(&mut text).with_context(|| format!("cannot read the {what} from stdin"))?;
    } else {
        text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read the {what} from {}", path.display()))?;
    }
    Ok(text.trim().to_string())
}

fn read_key(path: &FsPath) -> Result<Key> {
    let text = read_input(path, "key")?;
    Key::from_text(&text).with_context(|| format!("cannot read the key {}", path.display()))
}

fn write_key(key: &Key, path: &FsPath) -> Result<()> {
    if is_dash(path) {
        println!("{}", key.to_text());
        Ok(())
    } else {
        key.write_file(path).with_context(|| format!("cannot write the key to {}", path.display()))
    }
}

/// Runs one `moqt token` command.
pub fn run(command: TokenCommand) -> Result<()> {
    match command {
        TokenCommand::Generate(args) => generate(args),
        TokenCommand::Sign(args) => sign(args),
        TokenCommand::Verify(args) => verify(args),
    }
}

fn generate(args: GenerateArgs) -> Result<()> {
    let kid = args.id.unwrap_or_else(moqt_auth::keygen::random_kid);
    let mut key = moqt_auth::keygen::generate(args.algorithm, Some(kid.clone()))?;
    if !args.publish.is_empty() || !args.subscribe.is_empty() {
        let scope = Scope { root: args.root, publish: prefixes(&args.publish)?, subscribe: prefixes(&args.subscribe)? };
        key = key.with_scope(scope)?;
    }
    let public_to_stdout = args.public.as_deref().is_some_and(is_dash);
    let private_to_stdout = args.out_dir.is_none() && args.out.as_deref().is_none_or(is_dash);
    if public_to_stdout && private_to_stdout {
        bail!("cannot write both keys to stdout; use --out/--public with a file path, or --out-dir/--public-dir");
    }
    if let Some(dir) = &args.public_dir {
        write_key(&key.public()?, &dir.join(format!("{kid}.jwk")))?;
    } else if let Some(path) = &args.public {
        write_key(&key.public()?, path)?;
    }
    match (&args.out_dir, &args.out) {
        (Some(dir), _) => write_key(&key, &dir.join(format!("{kid}.jwk"))),
        (None, Some(path)) => write_key(&key, path),
        (None, None) => write_key(&key, FsPath::new("-")),
    }
}

/// moq-token prefixes (`p` is `p/**`, `""` everything) as patterns.
fn prefixes(list: &[String]) -> Result<Patterns> {
    list.iter().map(|p| Pattern::subtree(&Path::new(p)).with_context(|| format!("invalid prefix {p:?}"))).collect()
}

fn patterns(list: &[String]) -> Result<Patterns> {
    list.iter().map(|p| p.parse::<Pattern>().with_context(|| format!("invalid pattern {p:?}"))).collect()
}

fn sign(args: SignArgs) -> Result<()> {
    let key = read_key(&args.key)?;
    let mut publish = prefixes(&args.publish)?;
    publish.union(&patterns(&args.publish_pattern)?);
    let mut subscribe = prefixes(&args.subscribe)?;
    subscribe.union(&patterns(&args.subscribe_pattern)?);
    let t = now() as i64;
    let claims = Claims {
        root: args.root,
        publish,
        subscribe,
        cluster: args.cluster,
        expires: args.expires.or(args.valid_for.map(|s| t.saturating_add(s as i64))),
        issued: args.issued.or(args.valid_for.map(|_| t)),
        not_before: args.not_before,
    };
    println!("{}", moqt_auth::sign(&key, &claims)?);
    Ok(())
}

fn verify(args: VerifyArgs) -> Result<()> {
    if args.key.as_deref().is_some_and(is_dash) && is_dash(&args.token) {
        bail!("--key and --in cannot both read stdin");
    }
    let keys = match (&args.key, &args.key_dir) {
        (Some(path), _) => KeySet::Single(Box::new(read_key(path)?)),
        (None, Some(dir)) => {
            let (keys, scan) = KeyDir::open(dir)?;
            for (path, e) in &scan.skipped {
                tracing::warn!("skipped {}: {e}", path.display());
            }
            KeySet::Dir(keys)
        }
        (None, None) => bail!("--key or --key-dir is required"),
    };
    let unknown_claims = if args.ignore_unknown_claims { UnknownClaims::Ignore } else { UnknownClaims::Refuse };
    let verifier = Verifier { keys, options: moqt_auth::Options { leeway: args.leeway, unknown_claims } };
    let token = read_input(&args.token, "token")?;
    let at = args.now.unwrap_or_else(now);
    let claims = verifier.verify(&token, at).map_err(|e| anyhow::anyhow!("token refused ({}): {e}", e.kind()))?;
    println!("{}", claims.to_json());
    if let Some(path) = args.path {
        let access = verifier
            .authorize(&token, &Path::new(&path), at)
            .map_err(|e| anyhow::anyhow!("token refused ({}): {e}", e.kind()))?;
        let list = |ps: &Patterns| ps.iter().map(|p| format!("{:?}", p.as_str())).collect::<Vec<_>>().join(",");
        println!(
            "access at {:?}: publish [{}] subscribe [{}] cluster {} expires {}",
            access.root().as_str(),
            list(access.publish()),
            list(access.subscribe()),
            access.cluster(),
            access.expires().map_or("never".to_string(), |e| e.to_string()),
        );
    }
    Ok(())
}
