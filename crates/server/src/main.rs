//! The `stompbox` binary (work in progress).
fn main() {
    eprintln!("stompbox: the server is not built yet; see README");
    std::process::exit(2);
}
