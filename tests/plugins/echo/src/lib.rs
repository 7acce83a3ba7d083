//! The trivial plugin the invocation benchmark runs: it answers with the event's kind.

use portico_sdk::{Action, Event, Json, Outcome, Secrets, register_action};

struct Echo;

impl Action for Echo {
    type Config = Json;

    fn run(
        event: Event,
        _config: Json,
        _secrets: Secrets,
        _key: String,
    ) -> Result<Outcome, String> {
        Ok(Outcome {
            summary: event.kind,
            external_ref: None,
        })
    }
}

register_action!(Echo);
