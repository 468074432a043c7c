import { pickOne } from './random.ts';

/**
 * Words and labels for synthetic results: transcripts that sound like a contact centre, and
 * the label sets of the Behavioral API's tasks (as seen in real documents).
 */
const AGENT_LINES = [
  ' Thank you for calling, my name is Sam. How can I help you today?',
  ' Can I please have your full name and the account number?',
  ' For security, could you confirm your date of birth and the first line of your address?',
  ' I can see the payment on the account. Let me check what happened there.',
  ' I understand. I have raised that with our fraud team and you will get a text shortly.',
  ' Is there anything else I can help you with today?',
  " Okay, I've updated the phone number on the account. The change takes effect in 24 hours.",
  ' I will need to put you on hold for a moment while I look into that.',
];
const CALLER_LINES = [
  " Hi, yes, I'm calling about a payment on my account that I don't recognise.",
  " I'd like to check my balance and the last few transactions, please.",
  ' My card was declined this morning and I am not sure why.',
  ' Sure, the account number is on my statement, just give me a second.',
  ' I moved house last month and I need to change my address.',
  ' Could you tell me when the transfer will arrive? It has been three days.',
  " No, that's everything, thank you very much for your help.",
  ' I have been waiting a long time, can you please just sort this out for me?',
];
const FRAUDSTER_LINES = [
  " Hi, I need to change the phone number on my account, I've lost my phone.",
  ' I want to make an urgent transfer today, it cannot wait until tomorrow.',
  " I don't have the card with me, can you verify me some other way?",
  ' Please increase my daily limit, I am buying a car this afternoon.',
  " Yes, it's me, I just have a cold. Can we hurry up, please?",
  ' Can you send the one-time code to my new email address instead?',
];
const SHORT_LINES = [' Okay.', ' Yes.', ' Please.', ' Mm-hmm.', ' Sure.', ' No.', ' Right, thanks.', ' Hello?'];

/**
 * A transcript for an utterance of this role and length.
 * @example transcript(random, 'agent', 5.2); // ' Thank you for calling, …'
 */
export function transcript(random: () => number, role: string, seconds: number): string {
  if (seconds < 2) return pickOne(random, SHORT_LINES);
  const lines = role === 'agent' ? AGENT_LINES : role === 'fraudster' ? FRAUDSTER_LINES : CALLER_LINES;
  return pickOne(random, lines);
}

/** Languages that come second and third behind English in the top-3 language predictions. */
export const OTHER_LANGUAGES = ['es', 'de', 'fr', 'zh', 'ja', 'ru', 'it', 'pt', 'nl', 'hi'] as const;

/** Behavioral API tasks with their labels; `perSpeaker` ones stay the same for one voice. */
export const BEHAVIORAL_TASKS: { task: string; labels: string[]; perSpeaker?: boolean }[] = [
  { task: 'gender', labels: ['male', 'female'], perSpeaker: true },
  { task: 'age', labels: ['18 - 22', '23 - 30', '31 - 45', '46 - 65'], perSpeaker: true },
  { task: 'emotion', labels: ['happy', 'sad', 'neutral', 'angry'] },
  { task: 'positivity', labels: ['positive', 'neutral', 'negative'] },
  { task: 'strength', labels: ['strong', 'neutral', 'weak'] },
  { task: 'speaking_rate', labels: ['normal', 'slow', 'fast', 'very slow', 'very fast'] },
  { task: 'hesitation', labels: ['no', 'yes'] },
  { task: 'engagement', labels: ['neutral', 'engaged', 'withdrawn'] },
];
