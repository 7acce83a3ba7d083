//! A small authoritative DNS server on loopback, served by hickory-server: it answers TXT queries
//! from a table the test fills, and NXDOMAIN for every name not in the table.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use hickory_server::Server;
use hickory_server::net::runtime::Time;
use hickory_server::proto::op::{Header, HeaderCounts, Metadata, ResponseCode};
use hickory_server::proto::rr::rdata::TXT;
use hickory_server::proto::rr::{Name, RData, Record, RecordType};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use tokio::net::UdpSocket;

/// TXT strings by lower-case name without the trailing dot.
type Records = Arc<Mutex<HashMap<String, Vec<String>>>>;

pub struct DnsServer {
    pub addr: SocketAddr,
    records: Records,
    /// Owns the serving task: dropping the server stops it.
    _server: Server<Answers>,
}

impl DnsServer {
    /// A server on a fresh loopback UDP port, with no records.
    pub async fn start() -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let records = Records::default();
        let mut server = Server::new(Answers(records.clone()));
        server.register_socket(socket);
        Self {
            addr,
            records,
            _server: server,
        }
    }

    /// Removes every TXT record at a name, as a domain's owner who deleted it would.
    pub fn clear_txt(&self, name: &str) {
        self.records
            .lock()
            .unwrap()
            .remove(&name.to_ascii_lowercase());
    }

    /// Publishes a TXT record (name without trailing dot); earlier values at the name stay.
    pub fn set_txt(&self, name: &str, value: &str) {
        self.records
            .lock()
            .unwrap()
            .entry(name.to_ascii_lowercase())
            .or_default()
            .push(value.to_string());
    }
}

struct Answers(Records);

#[async_trait::async_trait]
impl RequestHandler for Answers {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.authoritative = true;
        metadata.recursion_available = true;
        let builder = MessageResponseBuilder::from_message_request(request);
        let Ok(info) = request.request_info() else {
            let response = builder.error_msg(&request.metadata, ResponseCode::FormErr);
            return response_handle
                .send_response(response)
                .await
                .unwrap_or_else(|_| failed(request));
        };
        let name = Name::from(info.query.name());
        let key = name.to_ascii().trim_end_matches('.').to_ascii_lowercase();
        let values = self.0.lock().unwrap().get(&key).cloned();
        if values.is_none() {
            metadata.response_code = ResponseCode::NXDomain;
        }
        let answers: Vec<Record> = values
            .filter(|_| info.query.query_type() == RecordType::TXT)
            .into_iter()
            .flatten()
            .map(|value| Record::from_rdata(name.clone(), 30, RData::TXT(TXT::new(vec![value]))))
            .collect();
        let response = builder.build(metadata, &answers, [], [], []);
        response_handle
            .send_response(response)
            .await
            .unwrap_or_else(|_| failed(request))
    }
}

/// What a test server reports when it could not answer: a failure to serve.
fn failed(request: &Request) -> ResponseInfo {
    let mut metadata = Metadata::response_from_request(&request.metadata);
    metadata.response_code = ResponseCode::ServFail;
    ResponseInfo::from(Header {
        metadata,
        counts: HeaderCounts::default(),
    })
}
