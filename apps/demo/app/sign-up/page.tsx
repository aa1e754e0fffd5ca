import { AuthForm } from "../../src/components/AuthForm.tsx";

export default function SignUpPage() {
  return <AuthForm mode="sign-up" />;
}
