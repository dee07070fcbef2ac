//! Test workflow that tries to open a socket: weft refuses it at deploy.
use weft_sdk::{Context, Error, Workflow};

struct NetCall;

impl Workflow for NetCall {
    type Input = String;
    type Output = bool;

    fn run(_ctx: &Context, addr: String) -> Result<bool, Error> {
        Ok(std::net::TcpStream::connect(addr).is_ok())
    }
}

weft_sdk::workflow!(NetCall);
