// `sqlx::migrate!` embeds migrations/ at compile time; without this, adding a migration does
// not rebuild the crate and the binary silently runs without it.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
