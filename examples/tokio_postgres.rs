//! tokio-postgres with libpq's TLS, from a libpq connection string.
//!
//! ```text
//! cargo run --example tokio_postgres --features tokio-postgres -- \
//!     "host=db.example.com user=app sslmode=verify-full sslrootcert=root.crt"
//! ```
//!
//! The only argument is a connection string (`key=value` or `postgresql://` URI; the
//! `PG*` environment variables fill in what it leaves out, as with libpq). It connects
//! through tokio-postgres running libpq's plan for the sslmode
//! (`pgtls::tokio_postgres::connect_conninfo`), runs `SELECT 1`, prints the server's view
//! of the session from `pg_stat_ssl`, and exits 0. On failure it prints the error in
//! libpq's words on stderr (e.g. `server certificate for "…" does not match host name
//! "…"`) and exits 1.
use std::process::ExitCode;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [conninfo] = args.as_slice() else {
        eprintln!("usage: tokio_postgres CONNECTION_STRING");
        return ExitCode::FAILURE;
    };
    match run(conninfo).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(conninfo: &str) -> Result<(), String> {
    let (client, connection) = pgtls::tokio_postgres::connect_conninfo(conninfo)
        .await
        .map_err(|err| err.to_string())?;
    let connection = tokio::spawn(connection);

    let one: i32 = client
        .query_one("SELECT 1", &[])
        .await
        .map_err(|err| err.to_string())?
        .get(0);
    println!("SELECT 1: {one}");

    let row = client
        .query_one(
            "SELECT ssl, version, cipher FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .map_err(|err| err.to_string())?;
    let ssl: bool = row.get(0);
    let version: Option<String> = row.get(1);
    let cipher: Option<String> = row.get(2);
    println!(
        "pg_stat_ssl: ssl={} version={} cipher={}",
        if ssl { "t" } else { "f" },
        version.as_deref().unwrap_or(""),
        cipher.as_deref().unwrap_or("")
    );

    drop(client);
    // The connection ends once the client is gone.
    let _ = connection.await;
    Ok(())
}
