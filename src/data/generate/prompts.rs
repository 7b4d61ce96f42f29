//! The two prompts of self-instruct (Wang et al. 2022) and the parsing of their replies:
//! a numbered list of tasks to continue, then worked examples for one new task.

use super::seeds::Task;

/// The instruction prompt: the in-context tasks as a numbered list, then the next number for
/// the model to go on from.
pub fn instruction_prompt(in_context: &[&str]) -> String {
    let mut prompt = String::from("Come up with a series of tasks:\n");
    for (i, instruction) in in_context.iter().enumerate() {
        prompt.push_str(&format!("{}. {}\n", i + 1, one_line(instruction)));
    }
    prompt.push_str(&format!("{}.", in_context.len() + 1));
    prompt
}

/// The new instructions of a reply: each numbered item (`9. …`, `10) …`), with its wrapped
/// lines joined; text before the first number (a chat model's "Sure! Here are …") is not an
/// item. A completion endpoint's reply starts right after the prompt's last number, so its
/// caller puts that number back in front.
pub fn parse_instructions(reply: &str) -> Vec<String> {
    let mut items: Vec<String> = Vec::new();
    let mut current: Option<String> = None;
    for line in reply.lines() {
        let line = line.trim();
        if let Some(mut rest) = numbered(line) {
            // A small model numbers twice: `1. 1. Name a fruit.`
            while let Some(inner) = numbered(rest) {
                rest = inner;
            }
            items.extend(current.take());
            current = Some(rest.to_string());
        } else if line.is_empty() {
            items.extend(current.take());
        } else if let Some(item) = current.as_mut() {
            item.push(' ');
            item.push_str(line);
        }
    }
    items.extend(current);
    items
        .into_iter()
        .map(|item| item.trim().to_string())
        .filter(|item| !item.is_empty())
        .collect()
}

/// The text after a list number (`12.`, `12)`, or a chat model's `Task 12:`), or None for a
/// line that is not an item.
fn numbered(line: &str) -> Option<&str> {
    let line = line.strip_prefix("Task ").unwrap_or(line);
    let digits = line.len() - line.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    if digits == 0 || digits > 3 {
        return None;
    }
    let rest = &line[digits..];
    let rest = [".", ")", ":"]
        .iter()
        .find_map(|mark| rest.strip_prefix(mark))?;
    Some(rest.trim_start())
}

const INSTANCE_PREAMBLE: &str = "Come up with examples for the following tasks. Try to \
    generate multiple examples when possible. If the task doesn't require additional input, \
    you can generate the output directly.";

/// The instance prompt: the seeds' worked examples in the paper's input-first layout, then the
/// new task for the model to answer in the same layout.
pub fn instance_prompt(examples: &[&Task], instruction: &str) -> String {
    let mut prompt = format!("{INSTANCE_PREAMBLE}\n\n");
    for task in examples {
        prompt.push_str(&format!("Task: {}\n", one_line(&task.instruction)));
        push_instances(&mut prompt, &task.instances);
        prompt.push('\n');
    }
    prompt.push_str(&format!("Task: {}\n", one_line(instruction)));
    prompt
}

fn push_instances(prompt: &mut String, instances: &[(String, String)]) {
    let numbered = instances.len() > 1 || instances.iter().any(|(input, _)| !input.is_empty());
    for (i, (input, output)) in instances.iter().enumerate() {
        if numbered {
            prompt.push_str(&format!("Example {}\n", i + 1));
        }
        if !input.trim().is_empty() {
            prompt.push_str(&format!("Input: {}\n", input.trim()));
        }
        prompt.push_str(&format!("Output: {}\n", output.trim()));
    }
}

/// The (input, output) examples of an instance reply, up to the next `Task:` (a model that
/// goes on to invent tasks of its own). An example without `Output:` is dropped; a reply with
/// no label at all is the output itself, with no input: a chat model answering the task
/// directly, as the prompt allows.
pub fn parse_instances(reply: &str) -> Vec<(String, String)> {
    let reply = reply.trim_start();
    let reply = reply.strip_prefix("Task:").map_or(reply, skip_line);
    let body = match reply.find("\nTask:") {
        Some(end) => &reply[..end],
        None => reply,
    };
    if !body.contains("Output:") && !body.contains("Input:") && !body.contains("Example") {
        let output = body.trim();
        return match output.is_empty() {
            true => Vec::new(),
            false => vec![(String::new(), output.to_string())],
        };
    }
    split_examples(body)
        .into_iter()
        .filter_map(|example| {
            let (before, output) = example.split_once("Output:")?;
            let input = before
                .split_once("Input:")
                .map_or("", |(_, input)| input)
                .trim();
            let output = output.trim();
            (!output.is_empty()).then(|| (input.to_string(), output.to_string()))
        })
        .collect()
}

/// The text after the first line (the echoed task).
fn skip_line(text: &str) -> &str {
    text.split_once('\n').map_or("", |(_, rest)| rest)
}

/// The chunks of a reply between `Example N` lines (the whole reply when there are none).
fn split_examples(body: &str) -> Vec<String> {
    let mut chunks = vec![String::new()];
    for line in body.lines() {
        let is_header = line
            .trim()
            .strip_prefix("Example")
            .is_some_and(|rest| rest.trim().chars().all(|c| c.is_ascii_digit() || c == ':'));
        if is_header {
            chunks.push(String::new());
        } else {
            let chunk = chunks.last_mut().expect("one chunk at least");
            chunk.push_str(line);
            chunk.push('\n');
        }
    }
    chunks.retain(|c| !c.trim().is_empty());
    chunks
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instruction_prompt_numbers_the_tasks_and_leaves_the_next() {
        let prompt = instruction_prompt(&["Explain MED.", "Fix this\nconfig."]);
        assert_eq!(
            prompt,
            "Come up with a series of tasks:\n1. Explain MED.\n2. Fix this config.\n3."
        );
    }

    #[test]
    fn numbered_replies_are_split_and_wrapped_lines_joined() {
        let reply = "Sure! Here are more:\n\n9. Explain the ORIGIN\nattribute.\n10) Compare iBGP and eBGP.\n\nThat is all.";
        assert_eq!(
            parse_instructions(reply),
            vec!["Explain the ORIGIN attribute.", "Compare iBGP and eBGP."]
        );
        assert_eq!(
            parse_instructions("Here's a list:\n\nTask 1: Explain MED\n\nTask 2: List the steps"),
            vec!["Explain MED", "List the steps"]
        );
        assert_eq!(
            parse_instructions("1. 1. Name a fruit."),
            vec!["Name a fruit."]
        );
    }

    #[test]
    fn instance_prompt_follows_the_input_first_layout() {
        let seed = Task {
            id: "s".into(),
            instruction: "Add the numbers.".into(),
            instances: vec![("1 2".into(), "3".into())],
        };
        let plain = Task {
            id: "p".into(),
            instruction: "Name a colour.".into(),
            instances: vec![(String::new(), "Blue".into())],
        };
        let prompt = instance_prompt(&[&seed, &plain], "Say hi.");
        assert!(prompt.ends_with(
            "Task: Add the numbers.\nExample 1\nInput: 1 2\nOutput: 3\n\n\
             Task: Name a colour.\nOutput: Blue\n\nTask: Say hi.\n"
        ));
    }

    #[test]
    fn instance_replies_give_examples_until_the_next_task() {
        let reply = "Example 1\nInput: show bgp summary\nOutput: The session is Idle.\n\
                     Example 2\nOutput: No input here.\nExample 3\nInput: only input\n\
                     Task: Something else\nOutput: ignored";
        assert_eq!(
            parse_instances(reply),
            vec![
                ("show bgp summary".into(), "The session is Idle.".into()),
                (String::new(), "No input here.".into()),
            ]
        );
        assert_eq!(
            parse_instances("Task: Say hi.\nOutput: Hi there!"),
            vec![(String::new(), "Hi there!".into())]
        );
        assert_eq!(
            parse_instances("Hi there!\nHow can I help?"),
            vec![(String::new(), "Hi there!\nHow can I help?".into())]
        );
        assert!(parse_instances("Example 1\nInput: no output").is_empty());
    }
}
