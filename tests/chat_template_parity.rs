//! The GGUF's chat template renders exactly as transformers' apply_chat_template
//! (tests/reference/make_chat_template_fixture.py).

mod common;

use tunelab::model::ChatMessage;

#[test]
fn renders_like_transformers() {
    let model = common::default_model();
    let fixture = common::read_json("chat_template_smollm2.json");
    assert_eq!(
        model.template.source(),
        fixture["template"].as_str().unwrap()
    );
    let cases = fixture["cases"].as_array().unwrap();
    assert!(cases.len() >= 5);
    for case in cases {
        let messages: Vec<ChatMessage> = serde_json::from_value(case["messages"].clone()).unwrap();
        let add = case["add_generation_prompt"].as_bool().unwrap();
        let rendered = model.template.render(&messages, add).unwrap();
        assert_eq!(
            rendered,
            case["rendered"].as_str().unwrap(),
            "messages {messages:?}"
        );
        let ids: Vec<u32> = serde_json::from_value(case["ids"].clone()).unwrap();
        assert_eq!(model.tokenizer.encode(&rendered).unwrap(), ids);
    }
}

#[test]
fn stops_at_the_end_of_turn_token() {
    let model = common::default_model();
    let im_end = model.tokenizer.token_to_id("<|im_end|>").unwrap();
    assert!(model.stop_ids.contains(&im_end));
}
